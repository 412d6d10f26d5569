"""What a run says at its start (what the user chose) and at its end (where everything went)."""

import logging
import shlex

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.run.layout import RunFolder

log = logging.getLogger(__name__)


def log_choices(cfg: DictConfig) -> None:
    """The config groups picked and the command line's overrides; every other setting is in config.yaml (a tree of
    all of them runs to ~180 lines, which hides the few a user chose)."""
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        picked = {group: choice for group, choice in reversed(hydra_cfg.runtime.choices.items())  # defaults order
                  if not group.startswith("hydra") and choice is not None}
        log.info("[config] " + " ".join(f"{group}={choice}" for group, choice in picked.items()))
        overrides = [o for o in hydra_cfg.overrides.task if o.split("=", 1)[0].lstrip("+~") not in picked]
        if overrides:
            log.info("[config] set on the command line: " + " ".join(overrides))
    log.info(f"[config] every setting: {RunFolder(cfg.paths.output_dir).config}")


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def logger_folders(trainer: L.Trainer) -> list[str]:
    """Where each logger writes (TensorBoard's event files, CSV's metrics.csv, ...)."""
    folders = []
    for logger in trainer.loggers:
        folder = getattr(logger, "log_dir", None) or logger.save_dir
        if folder:
            folders.append(f"{type(logger).__name__.removesuffix('Logger')} {folder}")
    return folders


def log_summary(trainer: L.Trainer, batches: int, seconds: float, cfg: DictConfig) -> None:
    """The last lines of a run: how far it got, and the files and commands a user wants next."""
    if not trainer.is_global_zero:
        return
    run = RunFolder(cfg.paths.output_dir)
    budget = f" of max_batches={cfg.max_batches}" if cfg.max_batches is not None else ""
    lines = [f"[done] {batches} batches{budget}, this session {duration(seconds)}: {run.root}"]
    weights = [p for p in (run.generator, run.generator_raw, run.discriminator, run.last_checkpoint) if p.is_file()]
    if weights:
        lines.append("  weights:     " + ", ".join(str(p.relative_to(run.root)) for p in weights))
    if run.samples.is_dir():
        gif = f", {run.gif.name}" if run.gif.is_file() else ""
        lines.append(f"  grids:       {run.samples.name}/ (every {cfg.sample_every_n_batches} batches){gif}")
    for folder in logger_folders(trainer):
        lines.append(f"  logs:        {folder}")
    root = shlex.quote(str(run.root))
    if run.generator.is_file():
        lines.append(f"  sample it:   python -m src.generate ckpt_path={root} num_samples=64")
    lines.append(f"  train more:  python -m src.train resume={root} max_batches=<more than {batches}>")
    for line in lines:
        log.info(line)
