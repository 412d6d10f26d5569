"""Prints the design's progress line every N batches with the mean losses since the last line."""

import logging

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from src.gan.contract import GANModule
from src.gan.interval_means import IntervalMeans

log = logging.getLogger(__name__)


class LossPrinter(L.Callback):
    def __init__(self, every_n_batches: int = 500) -> None:
        self.every_n_batches = every_n_batches
        self._losses = IntervalMeans()  # summed on the device: only the printing batch reads them

    @rank_zero_only
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if not outputs or self.every_n_batches <= 0:
            return
        self._losses.add({"g": outputs["loss_g"], "d": outputs["loss_d"]})
        step = pl_module.batches_done
        if step % self.every_n_batches == 0:
            means = self._losses.pop()
            line = f"Step {step}: Generator loss: {means['g']:.3f}, discriminator loss: {means['d']:.3f}"
            log.info(line)

    def state_dict(self) -> dict:
        return self._losses.state_dict()  # a resumed run prints the same means as one never stopped

    def load_state_dict(self, state_dict: dict) -> None:
        self._losses.load_state_dict(state_dict)
