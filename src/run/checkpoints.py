"""Reading checkpoints with one clear line when they can't be used: for resuming training (the full state,
matching the configured model) and for sampling (a run's config and generator weights)."""

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.core.layout import RunFolder
from src.gan.ema import DEFAULT_DECAY, ema_weights, has_ema
from src.networks.conditional import conditioned_generator

log = logging.getLogger(__name__)

def trained_generator(path: Path) -> str:
    """'; its run used model.generator._target_=...' when the checkpoint sits in a run folder."""
    run = RunFolder.of_checkpoint(path)
    if run is None:
        return ""
    target = OmegaConf.select(OmegaConf.load(run.config), "model.generator._target_")
    return f"; its run used model.generator._target_={target}" if target else ""


def require_fits(checkpoint: dict[str, Any], model: nn.Module, path: str | Path, key: str) -> None:
    """The checkpoint must hold this model's tensors with these shapes (Lightning would fail deep in load)."""
    have = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    optional = tuple(getattr(model, "optional_state_prefixes", ()))  # keys the model's own loading fills or drops
    missing = sorted(k for k in want.keys() - have.keys() if not k.startswith(optional))
    extra = sorted(k for k in have.keys() - want.keys() if not k.startswith(optional))
    reshaped = sorted((k for k in want.keys() & have.keys() if want[k] != have[k]),
                      key=lambda k: (k.startswith(optional), k))  # name a network's tensor before the EMA's
    if reshaped:
        k = reshaped[0]
        detail = f"{k} is {have[k]} there but {want[k]} in the configured model"
    elif missing or extra:
        detail = f"{len(missing)} tensors missing (e.g. {missing[:1]}), {len(extra)} unexpected (e.g. {extra[:1]})"
    else:
        detail = ""
    if detail:
        raise UserError(f"{key}={path} is a checkpoint of another model ({detail}{trained_generator(Path(path))}): "
                        "resume with the model and data settings of the run it came from")


def resolve_run(path: str | Path) -> tuple[Path, Path]:
    """(run folder, weights file) for a .ckpt file, a generator.pt, or a run folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"ckpt_path={path} does not exist: pass a run folder or its checkpoints/last.ckpt")
    if path.is_dir():
        run = RunFolder(path)
        for candidate in (run.generator, run.last_checkpoint):
            if candidate.is_file():
                return path, candidate
        raise UserError(f"run folder {path} holds neither {run.generator.name} nor "
                        f"{run.last_checkpoint.relative_to(path)}")
    return RunFolder.of_file(path).root, path


def load_run_config(run_dir: Path) -> DictConfig:
    config = RunFolder(run_dir).config
    if not config.is_file():
        raise UserError(f"{config} is missing: ckpt_path must sit in a run folder made by src.train")
    return OmegaConf.load(config)


def samples_with_ema(run_cfg: DictConfig) -> bool:
    """The run's own choice (model.sample_with_ema, model.ema_decay); runs from before the EMA default to it too."""
    model = run_cfg.model
    return bool(model.get("sample_with_ema", True)) and model.get("ema_decay", DEFAULT_DECAY) not in (None, 0)


def generator_state(weights: Path, use_ema: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
    """(state dict, whether it is the EMA) of the generator in generator.pt or in a Lightning checkpoint."""
    try:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, ...
        raise UserError(f"{weights} is not a readable checkpoint ({type(err).__name__}): use another file") from err
    if isinstance(payload, dict) and "state_dict" in payload:
        state = payload["state_dict"]
        is_ema = use_ema and has_ema(state)
        if use_ema and not is_ema:
            log.info(f"note: {weights} holds no EMA generator (trained without EMA): using its raw generator")
        if is_ema:
            return ema_weights(state), True
        return {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}, False
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise UserError(f"{weights} holds a {type(payload).__name__}, not a generator's weights (a dict of tensors as "
                        "src.train writes them): pass a run folder, its generator.pt or a checkpoints/*.ckpt")
    return payload, use_ema and RunFolder(weights.parent).generator_raw.is_file()


def load_generator(path: str | Path, use_ema: bool | None = None) -> tuple[nn.Module, DictConfig, Path, bool]:
    """Rebuild the run's generator and load its weights: the EMA ones unless use_ema=False (None: as the run was
    configured). Returns (G, run config, weights file, whether the weights are the EMA)."""
    run_dir, weights = resolve_run(path)
    cfg = load_run_config(run_dir)
    use_ema = samples_with_ema(cfg) if use_ema is None else use_ema
    run = RunFolder(run_dir)
    if not use_ema and weights == run.generator and run.generator_raw.is_file():
        weights = run.generator_raw  # generator.pt holds the EMA
    generator = conditioned_generator(instantiate(cfg.model.generator), bool(cfg.model.get("conditional", False)),
                                      cfg.model.get("num_classes"), int(cfg.model.get("class_embedding_dim", 16)),
                                      bool(cfg.model.get("class_batch_norm", False)))
    try:
        state, is_ema = generator_state(weights, use_ema)
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(
            f"{weights} does not hold weights of this run's generator ({cfg.model.generator._target_}): "
            "pass the checkpoint of the run it came from"
        ) from err
    broken = [k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:  # it would sample black (or noise) images without a word
        raise UserError(f"{weights} holds non-finite weights ({broken[0]}{' and more' if len(broken) > 1 else ''}): "
                        f"sample from a checkpoint from before it diverged, e.g. ckpt_path={run.checkpoints}/<file>")
    return generator, cfg, weights, is_ema
