"""Checks on a composed train config, run before any model, download or training work: each failure is one
line naming the key and a value that works."""

import difflib
import math
import os
import shutil
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.core.errors import UserError

MIN_FREE_BYTES = 1 << 20  # a run's records and first log lines; what a checkpoint needs is checked when it is written


def require_writable(folder: Path, key: str, example: str = "hydra.run.dir=outputs/my_run") -> None:
    """folder exists and takes files, or can be created: its nearest existing ancestor is a writable folder on a disk
    that is not full."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}={folder} cannot be created: {existing} is a file, not a folder; "
                        f"pick another place, e.g. {example}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{key}={folder} is not writable (no write permission in {existing}): "
                        f"pick another place, e.g. {example}")
    if (free := shutil.disk_usage(existing).free) < MIN_FREE_BYTES:
        from src.core.atomic_io import human_size

        raise UserError(f"{key}={folder} is on a full disk ({human_size(free)} free): nothing was written; free some "
                        f"space there, then run again (or pick another place, e.g. {example})")


# Settings that must be positive, each with a value that works (quoted in the message). Integers where the example
# is one. The config check, the GAN module and the DataModules all check through require_positive.
POSITIVE = {
    "model.lr_g": "2e-4", "model.lr_d": "2e-4", "model.n_critic": 1, "model.z_dim": 100, "model.num_fixed": 64,
    "model.image_size": 32, "model.grad_clip_norm": "1.0", "data.batch_size": 64, "data.image_size": 32,
    "max_batches": 1200, "max_minutes": "9.5",
    "num_samples": 64, "batch_size": 500, "nrow": 8, "per_class": 16, "epochs": 2,
    "metrics.num_samples": 10000, "metrics.batch_size": 500, "metrics.kid_subsets": 100,
    "metrics.kid_subset_size": 1000, "metrics.is_splits": 10, "metrics.num_real": 10000,
}


def require_positive(value: object, key: str, example: object = None) -> None:
    """One line naming the key and a value that works, when `value` is not a positive number of the key's kind.

    `example` replaces the table's where one CLI's key means something else (train_classifier's batch_size)."""
    example = POSITIVE[key] if example is None else example
    integer = isinstance(example, int)
    if isinstance(value, bool) or not isinstance(value, int if integer else Real):
        what = "a positive integer" if integer else "a positive number"
        raise UserError(f"{key} must be {what}, got {value!r}: e.g. {key}={example}")
    if not math.isfinite(value) or value <= 0:  # nan passes `value <= 0`
        raise UserError(f"{key} must be positive, got {value!r}: e.g. {key}={example}")


def require_betas(betas: object) -> None:
    """Adam's two decay rates, each in [0, 1)."""
    values = list(betas) if isinstance(betas, Sequence) and not isinstance(betas, str) else None
    if values is None or len(values) != 2 or not all(
            isinstance(b, Real) and not isinstance(b, bool) and 0 <= b < 1 for b in values):
        raise UserError(f"model.betas must be two numbers in [0, 1), got {betas!r}: e.g. model.betas=[0.5,0.999]")


# The precisions the training step supports: fp32, and autocast to bf16 or fp16 (with its GradScaler) around it.
# The "-true" half and double precisions cast the networks but not the data, noise and losses.
PRECISIONS = {"32-true", "32", "bf16-mixed", "bf16", "16-mixed", "16"}


def several_devices(trainer: DictConfig) -> bool:
    """Whether the trainer config asks for more than one device on a node (-1/auto: all there are)."""
    devices = trainer.get("devices", 1)
    return devices in (-1, "-1", "auto") or (isinstance(devices, int) and devices > 1) or (
        isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 1)


def require_supported_trainer(trainer: DictConfig) -> None:
    precision = str(trainer.get("precision", "32-true"))
    if precision not in PRECISIONS:
        raise UserError(f"trainer.precision={precision} is not supported: use 32-true (the default), bf16-mixed or "
                        "16-mixed")
    devices, strategy = trainer.get("devices", 1), str(trainer.get("strategy", "auto"))
    if several_devices(trainer) and strategy == "auto":
        raise UserError(f"trainer.devices={devices} needs a multi-process strategy for a GAN: use trainer=ddp "
                        f"trainer.devices={devices} (GPUs) or trainer=ddp_cpu (CPU processes)")


def require_seed(seed: object) -> None:
    """A seed the random generators take: a whole number in [0, 2**32)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UserError(f"seed must be a whole number from 0 to 4294967295, got {seed!r}: e.g. seed=42")


def require_count(cfg: DictConfig, key: str, meaning_of_zero: str) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{key} must be a whole number of batches, 0 {meaning_of_zero}, got {value!r}: "
                        f"e.g. {key}=500")


def require_no_missing(cfg: DictConfig) -> None:
    """A `???` left in the config, named before anything reads it: read through another key (model.num_classes
    -> data.num_classes -> data.path), OmegaConf would name the key that read it."""
    def walk(node: object, prefix: str) -> list[str]:
        if isinstance(node, dict):
            return [k for key, child in node.items() for k in walk(child, f"{prefix}{key}.")]
        return [prefix.rstrip(".")] if node == "???" else []

    missing = sorted(walk(OmegaConf.to_container(cfg, resolve=False), ""))
    if missing:
        raise UserError(f"{missing[0]} is required: add {missing[0]}=... to the command line")


def refuse_added_typos(cfg: DictConfig, overrides: list[str]) -> None:
    """`+max_batch=5` adds a key nobody reads (Hydra's `+` adds without asking): refuse a `+key` whose name is a
    near miss of a key that exists beside it, naming that key."""
    for override in overrides:
        if not override.startswith("+") or override.startswith("++") or "=" not in override:
            continue
        key = override[1:].split("=", 1)[0]
        near = closest_key(cfg, key, cutoff=0.85)
        if near:
            raise UserError(f"{key} is not a setting (the + in +{key} added it): did you mean {near}? "
                            f"Use {near}=... without the +")


def closest_key(cfg: DictConfig, key: str, cutoff: float = 0.6) -> str | None:
    """The existing key beside `key` whose name is nearest to its last part (max_batch -> max_batches)."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    if not isinstance(node, DictConfig):
        return None
    close = difflib.get_close_matches(leaf, [str(k) for k in node.keys() if k != leaf], n=1, cutoff=cutoff)
    return (f"{parent}.{close[0]}" if parent else close[0]) if close else None


def validate_train_config(cfg: DictConfig) -> None:
    require_no_missing(cfg)
    require_seed(cfg.seed)
    # data.batch_size and data.image_size: the DataModules check them, for every CLI that builds one
    for key in ("model.lr_g", "model.lr_d", "model.n_critic", "model.z_dim", "model.num_fixed", "model.image_size"):
        require_positive(OmegaConf.select(cfg, key), key)
    if cfg.max_batches is not None:
        require_positive(cfg.max_batches, "max_batches")
    if cfg.get("max_minutes") is not None:
        require_positive(cfg.max_minutes, "max_minutes")
    if cfg.model.get("grad_clip_norm") is not None:
        require_positive(cfg.model.grad_clip_norm, "model.grad_clip_norm")
    require_betas(cfg.model.get("betas"))
    if cfg.data.get("batch_size") == 1:
        raise UserError("data.batch_size=1: the generators' BatchNorm needs at least 2 images a batch: e.g. "
                        "data.batch_size=64")
    require_supported_trainer(cfg.trainer)
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
    import torch  # here, not above: the typo check (closest_key) runs before torch is needed

    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={cfg.trainer.accelerator} but no CUDA GPU is visible: use trainer=cpu "
                        "or trainer.accelerator=auto")
    if cfg.trainer.get("enable_progress_bar") is False and "progress_bar" in (cfg.get("callbacks") or {}):
        raise UserError("trainer.enable_progress_bar=false but callbacks.progress_bar is set: turn the bar off with "
                        "~callbacks.progress_bar instead")
    if cfg.trainer.get("gradient_clip_val"):
        raise UserError(f"trainer.gradient_clip_val={cfg.trainer.gradient_clip_val} does not apply under manual "
                        f"optimization: use model.grad_clip_norm={cfg.trainer.gradient_clip_val} instead")
    if model.get("grad_clip_norm") and model.get("fused_adam") and str(cfg.trainer.precision).startswith("16"):
        raise UserError("model.grad_clip_norm with trainer.precision=16-mixed needs model.fused_adam=false: fused Adam "
                        "unscales the gradients inside its step, too late to clip them")
    if cfg.get("scheduler") and cfg.max_batches is None:
        raise UserError("a learning-rate schedule runs over max_batches, which is null: set max_batches=<batches> or "
                        "scheduler=none")
    optimized = cfg.get("optimized_metric")
    if optimized and str(optimized).startswith("metrics/") and not cfg.metrics.every_n_batches:
        raise UserError(f"optimized_metric={optimized} is never measured with metrics.every_n_batches=0: set "
                        "metrics.every_n_batches=500 (or any period up to max_batches)")
    require_writable(Path(cfg.paths.output_dir), "paths.output_dir")
