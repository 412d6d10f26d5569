"""Checks on a composed train config, run before any model, download or training work: each failure is one
line naming the key and a value that works."""

import os
from numbers import Real
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from src.errors import UserError


def require_writable(folder: Path, key: str, example: str = "hydra.run.dir=outputs/my_run") -> None:
    """folder exists and takes files, or can be created: its nearest existing ancestor is a writable folder."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}={folder} cannot be created: {existing} is a file, not a folder; "
                        f"pick another place, e.g. {example}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{key}={folder} is not writable (no write permission in {existing}): "
                        f"pick another place, e.g. {example}")


def require_positive(cfg: DictConfig, key: str, example: str, integer: bool = False) -> None:
    value = OmegaConf.select(cfg, key)
    kind = int if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "a positive integer" if integer else "a positive number"
        raise UserError(f"{key} must be {what}, got {value!r}: e.g. {key}={example}")
    if value <= 0:
        raise UserError(f"{key} must be positive, got {value!r}: e.g. {key}={example}")


def require_count(cfg: DictConfig, key: str, meaning_of_zero: str) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{key} must be a whole number of batches, 0 {meaning_of_zero}, got {value!r}: "
                        f"e.g. {key}=500")


def validate_train_config(cfg: DictConfig) -> None:
    for key, example in (("model.lr_g", "2e-4"), ("model.lr_d", "2e-4")):
        require_positive(cfg, key, example)
    for key, example in (("model.n_critic", "1"), ("model.z_dim", "100"), ("model.num_fixed", "64"),
                         ("model.image_size", "32"), ("data.batch_size", "64")):
        require_positive(cfg, key, example, integer=True)
    if cfg.max_batches is not None:
        require_positive(cfg, "max_batches", "1200", integer=True)
    require_count(cfg, "checkpoint_every_n_batches", "for none between epochs")
    require_count(cfg, "report_every_n_batches", "for no loss line")
    require_count(cfg, "sample_every_n_batches", "for grids at epoch ends only")

    model, data = cfg.model, cfg.data
    if data.image_size != model.image_size:
        raise UserError(f"data.image_size={data.image_size} but the model makes {model.image_size}x{model.image_size}"
                        f" images: leave data.image_size at ${{model.image_size}} (data is resized), or set "
                        f"model.image_size={data.image_size} if the model allows it")
    if data.channels != model.channels:
        raise UserError(f"model.channels={model.channels} but data.channels={data.channels}: set "
                        f"data.channels={model.channels} (images are converted) and leave model.channels at "
                        "${data.channels}")
    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={cfg.trainer.accelerator} but no CUDA GPU is visible: use trainer=cpu "
                        "or trainer.accelerator=auto")
    if cfg.trainer.get("enable_progress_bar") is False and "progress_bar" in (cfg.get("callbacks") or {}):
        raise UserError("trainer.enable_progress_bar=false but callbacks.progress_bar is set: turn the bar off with "
                        "~callbacks.progress_bar instead")
    optimized = cfg.get("optimized_metric")
    if optimized and str(optimized).startswith("metrics/") and not cfg.metrics.every_n_batches:
        raise UserError(f"optimized_metric={optimized} is never measured with metrics.every_n_batches=0: set "
                        "metrics.every_n_batches=500 (or any period up to max_batches)")
    require_writable(Path(cfg.paths.output_dir), "paths.output_dir")
