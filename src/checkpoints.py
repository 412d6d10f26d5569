"""Reading checkpoints with one clear line when they can't be used: for resuming training (the full state,
matching the configured model) and for sampling (a run's config and generator weights)."""

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.cli import instantiate
from src.errors import UserError

TRAINING_STATE = {"state_dict", "optimizer_states", "loops", "global_step"}


def load_lazily(path: Path) -> Any:
    """torch.load with tensors memory-mapped: cheap even for big files, and a truncated file fails at once."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def read_checkpoint(path: Path, key: str) -> dict[str, Any]:
    """A training checkpoint written by src.train; `key` names the setting the path came from."""
    if not path.is_file():
        raise UserError(f"{key}={path} does not exist: pass a run folder as resume=<run> or a checkpoints/*.ckpt file")
    try:
        payload = load_lazily(path)
    except Exception as err:
        raise UserError(
            f"{key}={path} is not a readable checkpoint (truncated or not a torch file: {type(err).__name__}): "
            f"pass another file, or resume=<run folder> to take the newest readable one"
        ) from err
    if not isinstance(payload, dict) or not TRAINING_STATE <= payload.keys():
        raise UserError(f"{key}={path} holds no training state (weights only?): pass a checkpoints/*.ckpt written "
                        "by src.train")
    return payload


def newest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """(path, global_step) of the most advanced checkpoint in folder that loads; unreadable files are skipped."""
    found = []
    for path in folder.glob("*.ckpt") if folder.is_dir() else []:
        try:
            step = int(load_lazily(path)["global_step"])
        except Exception:  # truncated, empty, not a torch file, not a training checkpoint
            continue
        found.append(((step, path.stat().st_mtime, path.name == "last.ckpt"), path))
    if not found:
        return None
    (step, *_), path = max(found)
    return path, step


def trained_generator(path: Path) -> str:
    """'; its run used model.generator._target_=...' when the checkpoint sits in a run folder."""
    config = path.parent.parent / "config.yaml"
    if path.parent.name != "checkpoints" or not config.is_file():
        return ""
    target = OmegaConf.select(OmegaConf.load(config), "model.generator._target_")
    return f"; its run used model.generator._target_={target}" if target else ""


def require_fits(checkpoint: dict[str, Any], model: nn.Module, path: str | Path, key: str) -> None:
    """The checkpoint must hold this model's tensors with these shapes (Lightning would fail deep in load)."""
    have = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, extra = sorted(want.keys() - have.keys()), sorted(have.keys() - want.keys())
    reshaped = sorted(k for k in want.keys() & have.keys() if want[k] != have[k])
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
    trained, configured = checkpoint.get("hyper_parameters", {}).get("n_critic"), model.hparams.get("n_critic")
    if trained is not None and trained != configured:
        raise UserError(f"{key}={path} was trained with model.n_critic={trained}, not {configured}: keep "
                        f"model.n_critic={trained} when resuming (step counters count n_critic + 1 steps per batch)")


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


def generator_state(weights: Path) -> dict[str, torch.Tensor]:
    """The generator's state dict from generator.pt or from a Lightning checkpoint."""
    try:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, ...
        raise UserError(f"{weights} is not a readable checkpoint ({type(err).__name__}): use another file") from err
    if isinstance(payload, dict) and "state_dict" in payload:
        prefix = "generator."
        return {k[len(prefix):]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)}
    return payload


def load_generator(path: str | Path) -> tuple[nn.Module, DictConfig, Path]:
    """Rebuild the run's generator from its config and load its weights; returns (G, run config, weights)."""
    run_dir, weights = resolve_run(path)
    cfg = load_run_config(run_dir)
    generator: nn.Module = instantiate(cfg.model.generator)
    try:
        generator.load_state_dict(generator_state(weights))
    except RuntimeError as err:
        raise UserError(
            f"{weights} does not hold weights of this run's generator ({cfg.model.generator._target_}): "
            "pass the checkpoint of the run it came from"
        ) from err
    return generator, cfg, weights
