"""What a run says at its start (what the user chose) and at its end (where everything went)."""

import logging
import os
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

import src
from src.core.commands import command, override
from src.core.layout import RunFolder
from src.core.sweeps import JobClock
from src.run.choices import Choices

log = logging.getLogger(__name__)


def seconds_since_start() -> float:
    """Seconds since this process started (the command): the kernel's record of the start on Linux (ticks since boot,
    against the boot clock: to 10 ms, where /proc/stat's btime is whole seconds), else since src was imported."""
    try:
        after_name = Path("/proc/self/stat").read_text().rpartition(")")[2].split()  # the name may hold spaces
        started = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux
        return time.perf_counter() - src.IMPORTED_AT


class FirstBatchClock(L.Callback):
    """When this session's first batch ended, in seconds since the command started, or in a sweep since its job
    started (the `[done]` line says it)."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.since = "the command"

    def on_train_batch_end(self, *args, **kwargs) -> None:
        if self.seconds is None and JobClock.started is not None:
            self.seconds, self.since = time.perf_counter() - JobClock.started, "its job started"
        elif self.seconds is None:
            self.seconds = seconds_since_start()


def first_batch_after(trainer: L.Trainer) -> str:
    clocks = [c for c in trainer.callbacks if isinstance(c, FirstBatchClock) and c.seconds is not None]
    return f", first batch {clocks[0].seconds:.1f} s after {clocks[0].since}" if clocks else ""


class SettingsLine(L.Callback):
    """`[config] every setting: <run>/config.yaml` once training starts: a run refused while it sets up (its data,
    its metrics) removes a folder holding only its records, so the line would name a file about to vanish."""

    def __init__(self, output_dir: str | Path) -> None:
        self.config = RunFolder(output_dir).config

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            log.info(f"[config] every setting: {self.config}")


def log_choices(choices: Choices | None = None) -> None:
    """The config groups picked and the command line's overrides (a resume: the run's, then this command's); every
    other setting is in config.yaml (a tree of all of them runs to ~180 lines, which hides the few a user chose),
    which SettingsLine names once training starts."""
    choices = choices or Choices.current()
    if choices is not None:
        log.info("[config] " + " ".join(f"{group}={choice}" for group, choice in choices.groups.items()))
        if choices.overrides:
            log.info("[config] set on the command line: " + " ".join(choices.overrides))


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


def next_command(trainer: L.Trainer, batches: int, cfg: DictConfig, root: Path) -> str:
    """How to go on: to the budget when the run stopped short of it (a signal, the wall clock), else past it."""
    from src.run.budget import stop_reason

    resume = override("resume", root)
    if cfg.max_batches is None or batches >= cfg.max_batches:
        return f"train more:  {command('src.train', resume, f'max_batches=<more than {batches}>')}"
    if stop_reason(trainer).startswith("max_minutes"):  # it counts the run's training time across resumes
        return f"continue:    {command('src.train', resume, f'max_minutes=<more than {cfg.max_minutes}>')}"
    return f"continue:    {command('src.train', resume)}  (on to max_batches={cfg.max_batches})"


def log_summary(trainer: L.Trainer, batches: int, seconds: float, cfg: DictConfig) -> None:
    """The last lines of a run: how far it got, and the files and commands a user wants next."""
    if not trainer.is_global_zero:
        return
    run = RunFolder(cfg.paths.output_dir)
    budget = f" of max_batches={cfg.max_batches}" if cfg.max_batches is not None else ""
    session = f"this session {duration(seconds)}{first_batch_after(trainer)}"
    short = cfg.max_batches is not None and batches < cfg.max_batches  # a signal or the wall clock stopped it
    lines = [f"{'[stopped]' if short else '[done]'} {batches} batches{budget}, {session}: {run.root}"]
    weights = [p for p in (run.generator, run.generator_raw, run.discriminator, run.last_checkpoint) if p.is_file()]
    if weights:
        lines.append("  weights:     " + ", ".join(str(p.relative_to(run.root)) for p in weights))
    if run.samples.is_dir():
        gif = f", {run.gif.name}" if run.gif.is_file() else ""
        lines.append(f"  grids:       {run.samples.name}/ (every {cfg.sample_every_n_batches} batches){gif}")
    for folder in logger_folders(trainer):
        lines.append(f"  logs:        {folder}")
    if run.generator.is_file():
        lines.append(f"  sample it:   {command('src.generate', override('ckpt_path', run.root), 'num_samples=64')}")
    if any(run.checkpoints.glob("*.ckpt")):
        lines.append(f"  {next_command(trainer, batches, cfg, run.root)}")
    else:  # debug=fdr, or checkpoints turned off: there is nothing to resume from
        lines.append("  no checkpoint was saved: this run can't be continued (train again to go further)")
    for line in lines:
        log.info(line)
