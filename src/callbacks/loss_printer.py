"""Prints the design's progress line every N batches with the mean losses since the last line."""

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from src.gan.contract import GANModule


class LossPrinter(L.Callback):
    def __init__(self, every_n_batches: int = 500) -> None:
        self.every_n_batches = every_n_batches
        self._sum_g = self._sum_d = 0.0
        self._count = 0

    @rank_zero_only
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if not outputs or self.every_n_batches <= 0:
            return
        self._sum_g += float(outputs["loss_g"])
        self._sum_d += float(outputs["loss_d"])
        self._count += 1
        step = pl_module.batches_done
        if step % self.every_n_batches == 0:
            line = (
                f"Step {step}: Generator loss: {self._sum_g / self._count:.3f}, "
                f"discriminator loss: {self._sum_d / self._count:.3f}"
            )
            bar = trainer.progress_bar_callback
            bar.print(line) if bar is not None else print(line)
            self._sum_g = self._sum_d = 0.0
            self._count = 0
