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
