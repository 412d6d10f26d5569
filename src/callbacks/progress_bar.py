"""Lightning's progress bar, showing the losses the GAN module last logged.

Metrics logged with `self.log(..., prog_bar=True)` are read back from the device on every batch, logged or not
(Lightning converts them at each batch end), which makes a GPU wait once a batch. The module keeps the means it
logged as plain floats (`logged_means`), and this bar shows those: the bar reads nothing from the device."""

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

SHOWN = ("loss/g", "loss/d")


class ProgressBar(TQDMProgressBar):
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        logged = getattr(pl_module, "logged_means", {})
        return super().get_metrics(trainer, pl_module) | {name: f"{logged[name]:.3f}" for name in SHOWN
                                                          if name in logged}
