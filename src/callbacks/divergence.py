"""Stops training the moment G or D diverges, before a non-finite state can reach a checkpoint.

Every batch, the losses training_step returns are checked; at every checkpoint save, before anything is
written, every floating tensor of the model state is checked (weights can turn non-finite while the loss that
produced them was still finite). Raising here stops training: ModelCheckpoint runs after other callbacks, so the
diverged batch is never saved and the previous checkpoint stays the last one.
"""

from pathlib import Path
from typing import Any

import lightning as L
import torch

from src.gan.contract import GANModule
from src.run.checkpoints import newest_checkpoint
from src.run.errors import TrainingDiverged
from src.run.layout import RunFolder

LOSSES = {"loss_g": "loss/g", "loss_d": "loss/d"}


def last_good_checkpoint(trainer: L.Trainer) -> str:
    folders = {Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)}
    found = [f for f in (newest_checkpoint(folder) for folder in folders) if f is not None]
    if found:
        path, step = max(found, key=lambda f: f[1])
        run = RunFolder.of_file(path).root
        batches = step // trainer.lightning_module.steps_per_batch
        return (f"the last good checkpoint is {path} (batch {batches}), left as it was: continue from it with a "
                f"lower learning rate, e.g. python -m src.train resume={run} model.lr_g=... model.lr_d=...")
    if trainer.ckpt_path:
        return f"no checkpoint was written since resuming from {trainer.ckpt_path}, which is left as it was"
    return "no checkpoint was written before it"


class StopOnDivergence(L.Callback):
    def _stop(self, trainer: L.Trainer, pl_module: GANModule, what: str) -> None:
        raise TrainingDiverged(f"training diverged at batch {pl_module.batches_done}: {what}; "
                               f"{last_good_checkpoint(trainer)}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        losses = {name: outputs[key] for key, name in LOSSES.items() if isinstance(outputs, dict) and key in outputs}
        # one device-to-host read per batch on the good path (each separate check would sync a GPU once)
        if losses and not torch.isfinite(torch.stack(list(losses.values()))).all():
            bad = [name for name, value in losses.items() if not torch.isfinite(value)]
            values = ", ".join(f"{name}={float(value):g}" for name, value in losses.items())
            self._stop(trainer, pl_module, f"{' and '.join(bad)} not finite ({values})")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: GANModule, checkpoint: dict[str, Any]) -> None:
        for key, tensor in checkpoint["state_dict"].items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                self._stop(trainer, pl_module, f"{key} holds non-finite values, so this state was not saved")
