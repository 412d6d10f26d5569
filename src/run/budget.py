"""Saying why training stopped when it stopped short of max_batches: another limit, named, with how to go on."""

import logging

import lightning as L
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from src.core.commands import command, override
from src.core.layout import RunFolder
from src.core.loop import batches_in
from src.core.signals import stop_pending
from src.gan.contract import GANModule

log = logging.getLogger(__name__)


def stop_reason(trainer: L.Trainer) -> str:
    """The limit that ended fit() before max_steps: the wall clock, the epoch limit, or something else."""
    timers = [c for c in trainer.callbacks if isinstance(c, Timer)]
    if timers and timers[0].time_remaining() <= 0:
        return "max_minutes reached"
    if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:
        return f"trainer.max_epochs={trainer.max_epochs} reached"
    return "training ended early"


def report_short_budget(trainer: L.Trainer, model: GANModule, cfg: DictConfig) -> None:
    """One line when the run did fewer batches than max_batches asked for (nothing when it did them all)."""
    if cfg.max_batches is None or trainer.interrupted or stop_pending() or model.batches_done >= cfg.max_batches:
        return  # a signal stop says so in its own line
    run, reason = cfg.paths.output_dir, stop_reason(trainer)
    more = " max_minutes=<more>" if reason.startswith("max_minutes") else ""
    if rank_zero_only.rank == 0:
        log.info(f"stopped at batch {model.batches_done} of max_batches={cfg.max_batches}: {reason}; everything a "
              f"finished run writes is in {run}; continue with {command('src.train', override('resume', run))}{more}")


def budget_spent(checkpoint: dict, cfg: DictConfig) -> bool:
    """Whether the checkpoint a run continues from has trained max_batches already; if so, one line says there is
    nothing to do (the caller then trains nothing and rewrites no file). A finished run whose final weights are
    missing (stopped while writing them) is not done: fit then trains no batch and writes them."""
    if cfg.max_batches is None:
        return False
    done = batches_in(checkpoint)
    if done < cfg.max_batches:
        return False
    run = cfg.paths.output_dir
    folder = RunFolder(run)
    missing = [p.name for p in (folder.generator, folder.discriminator) if not p.is_file()]
    if missing:
        if rank_zero_only.rank == 0:
            log.info(f"[resume] {run} has trained {done} batches, max_batches={cfg.max_batches}, but its "
                     f"{' and '.join(missing)} are missing: writing its final files from its last checkpoint")
        return False
    if rank_zero_only.rank == 0:
        log.info(f"[resume] {run} has trained {done} batches, max_batches={cfg.max_batches}: nothing to do, no file "
                 f"changed; train it longer with {command('src.train', override('resume', run))} "
                 f"max_batches=<more than {done}>")
    return True
