"""Lightning's progress bar, showing the losses the GAN module last logged.

Metrics logged with `self.log(..., prog_bar=True)` are read back from the device on every batch, logged or not
(Lightning converts them at each batch end), which makes a GPU wait once a batch. The module keeps the means it
logged as plain floats (`logged_means`), and this bar shows those: the bar reads nothing from the device.

A run resumed mid-epoch gets no `on_train_epoch_start` from Lightning; the bar sizes its epoch at the first batch
instead (else it shows `Training: 40/?`)."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

SHOWN = ("loss/g", "loss/d")


class ProgressBar(TQDMProgressBar):
    def on_train_start(self, *args: Any) -> None:
        super().on_train_start(*args)
        self._epoch_sized = False

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._epoch_sized = True

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Closed now, before the error line is printed: else tqdm draws it once more, below that line, at exit.
        for bar in (self._train_progress_bar, self._val_progress_bar):
            if bar is not None:
                bar.close()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
                             ) -> None:
        if not self._epoch_sized:  # resumed mid-epoch: batch_idx batches of this epoch are done
            self.on_train_epoch_start(trainer)
            if trainer.max_steps > 0:  # the budget may end this epoch early (Lightning's counter counts batches)
                left = trainer.max_steps - trainer.global_step
                self.train_progress_bar.total = min(trainer.num_training_batches, batch_idx + left)
            self.train_progress_bar.n = batch_idx
            self.train_progress_bar.refresh()

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        logged = getattr(pl_module, "logged_means", {})
        return super().get_metrics(trainer, pl_module) | {name: f"{logged[name]:.3f}" for name in SHOWN
                                                          if name in logged}
