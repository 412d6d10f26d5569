"""Prints the design's progress line every N batches with the mean losses since the last line, read from the
module's running sum of what it logs (src/gan/interval_means.py): only the printing batch reads the device."""

import logging

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from src.gan.contract import GANModule
from src.gan.interval_means import IntervalMeans, Totals

log = logging.getLogger(__name__)

LOSSES = ("loss/g", "loss/d")


class LossPrinter(L.Callback):
    def __init__(self, every_n_batches: int = 500) -> None:
        self.every_n_batches = every_n_batches
        self._kept_sums: Totals | None = None  # a checkpoint's sums of the line under way, from before the shared sum

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._losses = pl_module.running_sums.reader("loss_printer")  # checkpointed with the module's sums
        if self._kept_sums is not None:  # already among them: the batches since the last logging batch
            current = pl_module.running_sums.totals()
            self._losses.carry_over({f"loss/{name}": [total - current.get(f"loss/{name}", [0.0, 0])[0],
                                                      count - current.get(f"loss/{name}", [0.0, 0])[1]]
                                     for name, (total, count) in self._kept_sums.items()})
            self._kept_sums = None

    @rank_zero_only
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        step = pl_module.batches_done
        if self.every_n_batches <= 0 or step % self.every_n_batches:
            return
        means = self._losses.means(LOSSES)
        if len(means) == len(LOSSES):
            log.info(f"Step {step}: Generator loss: {means['loss/g']:.3f}, discriminator loss: {means['loss/d']:.3f}")

    def load_state_dict(self, state_dict: dict) -> None:
        """Checkpoints of 551185a and before kept the line's own sums of G's and D's loss (names g, d)."""
        if state_dict:
            kept = IntervalMeans()
            kept.load_state_dict(state_dict)
            self._kept_sums = kept.totals()
