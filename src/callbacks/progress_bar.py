"""Lightning's progress bar, showing the losses the GAN module last logged, and counting batches to the budget.

Lightning sizes the last epoch's bar by the optimizer steps left, but a GAN batch is n_critic + 1 steps: a run of
1200 batches showed "260/526" in its second epoch. Here the steps left are converted to batches.

Metrics logged with `self.log(..., prog_bar=True)` are read back from the device on every batch, logged or not
(Lightning converts them at each batch end), which makes a GPU wait once a batch. The module keeps the means it
logged as plain floats (`logged_means`), and this bar shows those: the bar reads nothing from the device."""

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

SHOWN = ("loss/g", "loss/d")


class ProgressBar(TQDMProgressBar):
    @property
    def total_train_batches(self) -> int | float:
        trainer = self.trainer
        steps = getattr(trainer.lightning_module, "steps_per_batch", 1)
        if trainer.max_epochs == -1 and trainer.max_steps is not None and trainer.max_steps > 0:
            return min(trainer.num_training_batches, (trainer.max_steps - trainer.global_step) // steps)
        return trainer.num_training_batches

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        logged = getattr(pl_module, "logged_means", {})
        return super().get_metrics(trainer, pl_module) | {name: f"{logged[name]:.3f}" for name in SHOWN
                                                          if name in logged}
