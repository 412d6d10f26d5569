"""The configured metrics (FID/KID/IS, class coverage, precision/recall/density/coverage) of the sampling generator
every N batches, logged as metrics/<name>.

The values go to every logger (x-axis: batches) and into trainer.callback_metrics, where a
ModelCheckpoint(monitor="metrics/fid_domain", every_n_train_steps=<the same period: it counts batches>) reads them
to keep best.ckpt: checkpoint callbacks run after the others, so they see this batch's value.

`at_end` measures once when training ends instead (null: in sweep jobs, so that a sweep's summary.md and HPARAMS
table compare quality; when the extractor is missing, one line says why and the job trains on)."""

import logging
import warnings

import lightning as L
import torch

from src.core.errors import UserError
from src.core.signals import stop_pending
from src.core.sweeps import in_sweep_job
from src.gan.contract import GANModule
from src.metrics.evaluator import Evaluator, build_evaluator
from src.metrics.settings import MetricSettings

# best.ckpt is saved after the G step on purpose: those are the weights the metric just measured.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")
log = logging.getLogger(__name__)


class QualityMetrics(L.Callback):
    def __init__(self, settings: MetricSettings, at_end: bool | None = None) -> None:
        self.settings = settings
        self.at_end = at_end
        self.evaluator: Evaluator | None = None

    @property
    def every_n_batches(self) -> int:
        return self.settings.every_n_batches

    def on_fit_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        """Load the extractor and the real statistics up front: a missing classifier fails before training."""
        if self.every_n_batches > 0:
            self.at_end = False  # the periodic measurements say it
        elif self.at_end is None:
            self.at_end = in_sweep_job()
        if self.every_n_batches <= 0 and not self.at_end:
            return
        if self.settings.monitor not in self.settings.names():
            raise UserError(f"metrics.monitor={self.settings.monitor} is not measured; choose one of "
                            f"{self.settings.names()}")
        if not trainer.is_global_zero:
            return
        try:
            self.evaluator = build_evaluator(self.settings, trainer.datamodule, pl_module.device)
        except UserError as err:
            if self.every_n_batches > 0:
                raise
            log.info(f"[metrics] not measured at the end of this run: {err}")

    def on_train_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if not self.at_end or pl_module.batches_done == 0 or stop_pending():  # a signal: exit promptly
            return
        values = None
        if trainer.is_global_zero and self.evaluator is not None:
            values = self.evaluator.evaluate(pl_module.sampling_generator, pl_module.z_dim)
        values = trainer.strategy.broadcast(values, src=0)
        if values is None:
            return
        logged = {f"metrics/{name}": value for name, value in values.items()}
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in logged.items()})
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=pl_module.batches_done)
        log.info(f"[metrics] at batch {pl_module.batches_done}: {self.settings.monitor} "
                 f"{values[self.settings.monitor]:.4g}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        step = pl_module.batches_done
        if self.every_n_batches <= 0 or step % self.every_n_batches != 0:
            return
        values = None
        if trainer.is_global_zero:
            values = self.evaluator.evaluate(pl_module.sampling_generator, pl_module.z_dim)
        values = trainer.strategy.broadcast(values, src=0)  # every rank logs the same value for the checkpoint
        logged = {f"metrics/{name}": value for name, value in values.items()}
        for name, value in logged.items():
            pl_module.log(name, value, on_step=True, on_epoch=False, logger=False)
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=step)
