"""Finding a run's config and generator weights from a checkpoint file or a run folder."""

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.cli import instantiate
from src.errors import UserError


def resolve_run(path: str | Path) -> tuple[Path, Path]:
    """(run folder, weights file) for a .ckpt file, a generator.pt, or a run folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"ckpt_path={path} does not exist: pass a run folder or its checkpoints/last.ckpt")
    if path.is_dir():
        for candidate in (path / "generator.pt", path / "checkpoints" / "last.ckpt"):
            if candidate.is_file():
                return path, candidate
        raise UserError(f"run folder {path} holds neither generator.pt nor checkpoints/last.ckpt")
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return run_dir, path


def load_run_config(run_dir: Path) -> DictConfig:
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise UserError(f"{config} is missing: ckpt_path must sit in a run folder made by src.train")
    return OmegaConf.load(config)


EMA_PREFIX = "ema.module."


def samples_with_ema(run_cfg: DictConfig) -> bool:
    """The run's own choice (model.sample_with_ema, model.ema_decay); runs from before the EMA default to it too."""
    model = run_cfg.model
    return bool(model.get("sample_with_ema", True)) and model.get("ema_decay", 0.999) not in (None, 0)


def generator_state(weights: Path, use_ema: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
    """(state dict, whether it is the EMA) of the generator in generator.pt or in a Lightning checkpoint."""
    try:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, ...
        raise UserError(f"{weights} is not a readable checkpoint ({type(err).__name__}): use another file") from err
    if isinstance(payload, dict) and "state_dict" in payload:
        state = payload["state_dict"]
        is_ema = use_ema and any(k.startswith(EMA_PREFIX) for k in state)
        if use_ema and not is_ema:
            print(f"note: {weights} holds no EMA generator (trained without EMA): using its raw generator")
        prefix = EMA_PREFIX if is_ema else "generator."
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, is_ema
    return payload, use_ema and weights.with_name("generator_raw.pt").is_file()


def load_generator(path: str | Path, use_ema: bool | None = None) -> tuple[nn.Module, DictConfig, Path, bool]:
    """Rebuild the run's generator and load its weights: the EMA ones unless use_ema=False (None: as the run was
    configured). Returns (G, run config, weights file, whether the weights are the EMA)."""
    run_dir, weights = resolve_run(path)
    cfg = load_run_config(run_dir)
    use_ema = samples_with_ema(cfg) if use_ema is None else use_ema
    if not use_ema and weights.name == "generator.pt" and weights.with_name("generator_raw.pt").is_file():
        weights = weights.with_name("generator_raw.pt")  # generator.pt holds the EMA
    generator: nn.Module = instantiate(cfg.model.generator)
    try:
        state, is_ema = generator_state(weights, use_ema)
        generator.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(
            f"{weights} does not hold weights of this run's generator ({cfg.model.generator._target_}): "
            "pass the checkpoint of the run it came from"
        ) from err
    return generator, cfg, weights, is_ema
