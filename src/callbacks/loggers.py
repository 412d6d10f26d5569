"""The run's loggers (conf/logger/): how they are made, what reaches them besides Lightning's scalars (sample grids,
the run's settings with its final metrics), and how a resumed run keeps their files whole.

- TensorBoard takes images and, at the end of a run, its settings with the final metrics (the HPARAMS tab);
  wandb and MLflow take images and the settings (their final metrics are the last values they were sent);
  CSV takes the settings (hparams.yaml) and no images (the grids are PNGs in samples/ anyway).
- A resumed run drops what the killed process logged from the batch it resumes at: TensorBoard through
  SummaryWriter's purge_step, CSV by keeping the rows before that batch (Lightning's CSVLogger would delete them).
"""

import csv
import importlib
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from src.core.atomic_io import WriteFailed, describe_failure
from src.core.commands import override_key
from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.core.sweeps import in_sweep_job, swept_first, swept_keys
from src.gan.contract import GANModule
from src.gan.sampling import pixels


class PickedOptions(Protocol):
    """What made the run's config (src/run/choices.py's Choices, a floor above): the config groups picked and the other
    overrides."""

    groups: dict[str, str]
    overrides: list[str]


# Loggers whose package is an optional dependency: pyproject.toml's `loggers` extra.
OPTIONAL_PACKAGES = {WandbLogger: "wandb", MLFlowLogger: "mlflow"}
# What the settings table leaves out: where the run's files go and how it is logged, not what it trains.
NOT_SETTINGS = ("hydra", "paths", "logger", "callbacks", "resume", "ckpt_path", "trainer.default_root_dir")


def tensorboard_writers(trainer: L.Trainer) -> list[SummaryWriter]:
    """The SummaryWriters of the trainer's TensorBoard loggers (none when logging is off)."""
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]


def require_package(logger_class: type, key: str) -> None:
    """One line naming the extra, instead of Lightning's ImportError from inside the logger, when a logger's
    optional package does not import."""
    for cls, package in OPTIONAL_PACKAGES.items():
        if issubclass(logger_class, cls):
            try:
                importlib.import_module(package)
            except ImportError as err:
                choice = HydraConfig.get().runtime.choices.get("logger") if HydraConfig.initialized() else key
                raise UserError(f"logger={choice} needs the {package} package: pip install -e '.[loggers]' "
                                f"({type(err).__name__}: {err})") from err


def instantiate_loggers(cfg: DictConfig | None, resumed_at: int | None = None) -> list[Logger]:
    """The loggers of conf/logger/ (none for ~logger); resumed_at: the batch a resumed run starts from."""
    loggers = []
    for key, node in (cfg or {}).items():
        cls = hydra.utils.get_class(node._target_)
        require_package(cls, key)
        kwargs = {}
        if issubclass(cls, TensorBoardLogger) and resumed_at is not None:
            kwargs["purge_step"] = resumed_at  # SummaryWriter writes a SessionLog.START there
            after_earlier_event_files(Path(node.save_dir, node.get("name") or "", str(node.get("version") or "")))
        if issubclass(cls, MLFlowLogger):
            # MLflow 3 refuses its file store (mlruns/ folders) unless told it is wanted; a server needs no such word.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if issubclass(cls, WandbLogger):
            finish_previous_wandb_run()
        logger = instantiate(node, **kwargs)
        if isinstance(logger, CSVLogger) and resumed_at is not None:
            keep_csv_rows_before(logger, resumed_at)
        loggers.append(logger)
    return loggers


def after_earlier_event_files(folder: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and names start with the second they were opened in,
    then the process id: a run resumed within the same second as the process it continues could sort first, and its
    purge would come before the points it drops. So a resumed run opens its file in a later second (waiting < 1 s)."""
    names = [p.name.split(".") for p in folder.glob("events.out.tfevents.*")]
    stamps = [int(parts[3]) for parts in names if len(parts) > 3 and parts[3].isdigit()]
    if stamps and max(stamps) >= int(time.time()):
        time.sleep(max(stamps) + 1 - time.time())


def finish_previous_wandb_run() -> None:
    """A sweep's earlier job in this process (Hydra's basic launcher) may have left its wandb run open; Lightning's
    WandbLogger would log into it instead of starting this job's own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


@rank_zero_only
def keep_csv_rows_before(logger: CSVLogger, step: int) -> None:
    """The rows of a resumed run's metrics.csv logged before `step`, written back at once: Lightning's writer
    deletes the file when it opens a folder that has one."""
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("step") and int(row["step"]) < step]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
        writer = logger.experiment
    for row in rows:
        writer.log_metrics({k: v for k, v in row.items() if k != "step" and v != ""}, int(row["step"]))
    writer.save()


def flush(trainer: L.Trainer) -> None:
    """Everything logged so far onto disk (TensorBoard's events, CSV's rows); wandb and MLflow write as they go."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.flush()
        elif isinstance(logger, CSVLogger):
            logger.save()


def image_loggers(trainer: L.Trainer) -> tuple[list[Logger], list[Logger]]:
    """The loggers that take images: (those to write on the training thread, those a worker thread may write).

    MLflow's file store reads every metric file of a run the first time it stores one of the run's artifacts, and reads
    a file the training thread has just created and not yet written as malformed: an image stored off the training
    thread failed the run that way (a stress test of MLflow alone: 15 runs of 40). So MLflow's images are stored on
    the training thread, where its metrics are (tens of ms per grid, once per sample_every_n_batches)."""
    here = [logger for logger in trainer.loggers if isinstance(logger, MLFlowLogger)]
    elsewhere = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger | WandbLogger)]
    return here, elsewhere


def log_image(loggers: list[Logger], tag: str, image: torch.Tensor, step: int, encoded: bytes | None = None) -> None:
    """A (C, H, W) float image in [0, 1] to each of `loggers` (see image_loggers); `encoded`: its PNG, which TensorBoard
    then takes as it is instead of encoding the image again."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and encoded is not None:
            channels, height, width = image.shape
            picture = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=encoded)
            logger.experiment.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, image, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[image], step=step)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_image(logger.run_id, pixels(image), key=tag, step=step)


def flat_scalars(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every scalar leaf (a list of scalars becomes its text; None and other lists are left
    out)."""
    if isinstance(node, Mapping):
        return {k: v for key, child in node.items() for k, v in flat_scalars(child, f"{prefix}{key}.").items()}
    key = prefix.removesuffix(".")
    if isinstance(node, bool | int | float | str):
        return {key: node}
    if isinstance(node, list) and node and all(isinstance(v, bool | int | float | str) for v in node):
        return {key: str(node)}
    return {}


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as one flat table under the names a command line gives them (model.lr_g, loss._target_,
    max_batches, ...): each value once, where it is set (not where it is interpolated into, e.g. model.loss), without
    Hydra's _partial_ flags, where the run's files go or how it is logged."""
    unresolved = flat_scalars(OmegaConf.to_container(cfg, resolve=False))
    left_out = (*NOT_SETTINGS, *(k for k, v in unresolved.items() if isinstance(v, str) and "${" in v))
    return {k: v for k, v in flat_scalars(OmegaConf.to_container(cfg, resolve=True)).items()
            if not any(k == n or k.startswith(f"{n}.") for n in left_out)
            and (k.endswith("._target_") or not k.rsplit(".", 1)[-1].startswith("_"))}


def with_choices(settings: dict[str, Any], choices: PickedOptions | None) -> dict[str, Any]:
    """Each config group as the option picked (augment=diffaugment) in place of the class path that option sets,
    which TensorBoard's HPARAMS table cuts to `src.gan.au...`; a `_target_` given on the command line is kept."""
    if choices is None:
        return settings
    groups = {group: choice for group, choice in choices.groups.items()
              if not any(group == n or group.startswith(f"{n}/") for n in NOT_SETTINGS)}
    given = {override_key(o) for o in choices.overrides}
    implied = {f"{group}._target_" for group in groups} - given
    return groups | {k: v for k, v in settings.items() if k not in implied}


class HyperparameterTable(L.Callback):
    """The run's settings to every logger when fit starts (TensorBoard: hparams.yaml, CSV: hparams.yaml, wandb: the
    run's config, MLflow: its params), and at the end, with the names of the final metrics, to TensorBoard's HPARAMS
    tab, whose table reads each metric's last logged value: a sweep's runs compared in one table.

    They replace the module's own hyper-parameters that Lightning would log (its constructor arguments, already
    among these under model.*), so each setting appears once, under the name an override gives it; a config group
    appears as the option picked (`choices`: loss=bce, not loss._target_)."""

    def __init__(self, cfg: DictConfig, choices: PickedOptions | None = None) -> None:
        settings = with_choices(run_settings(cfg), choices)
        swept = swept_keys(HydraConfig.get()) if in_sweep_job() else []  # a sweep's varied keys: the first columns
        self.settings = {key: settings[key] for key in swept_first(list(settings), swept)}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        trainer.enable_autolog_hparams = False

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.settings)
            logger.save()

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning's log_hyperparams(params, metrics) would also log each value again, an extra point on its curve
        # (at step 0 by default): the summaries only name the metrics, TensorBoard reads the curves' last values.
        final = {name: float(value) for name, value in trainer.callback_metrics.items()}
        # torch's summary writes a bool as a number: true/false, as an override spells it
        settings = {k: str(v).lower() if isinstance(v, bool) else v for k, v in self.settings.items()}
        for writer in tensorboard_writers(trainer):
            for summary in hparams_summaries(settings, final):
                writer.file_writer.add_summary(summary)
            writer.flush()


def logger_write_failed(logger: object, err: Exception) -> Exception:
    """A logger's write failure as WriteFailed (Lightning's TensorBoard logger reports it as a ValueError about the
    value logged, the OSError inside); any other error as it was."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return err
    folder = Path(getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None) or ".")
    reason, remedy = describe_failure(folder / "logs", cause, 0)
    return WriteFailed(f"could not write the {type(logger).__name__} logs in {folder}: {reason}", remedy)


class LogScalars(L.Callback):
    """At each logging batch (trainer.log_every_n_steps), the means the module logged (logged_means) straight to
    every logger, at the x-axis self.log uses (batch n at step n - 1), and into callback_metrics (a sweep's
    optimized_metric, the HPARAMS table). self.log would cost about a millisecond a value on a CPU
    (benchmarks/train.md) and turn the floats back into tensors. src/train.py runs it before every other callback."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        batches = pl_module.batches_done
        if batches % trainer.log_every_n_steps or not pl_module.logged_means:
            return
        values = pl_module.logged_means
        for logger in trainer.loggers:
            try:
                logger.log_metrics(values, batches - 1)
                logger.save()
            except Exception as err:  # a full disk under a logger's files: one line, like any other failed write
                raise logger_write_failed(logger, err) from err
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in values.items()})
