"""Stops training when G or D diverges, before a non-finite state can reach a checkpoint.

Every batch, the losses training_step returns are checked on the device: the first non-finite batch and its losses
are kept there, so batches read nothing back to the host (a GPU never waits for the check). The record is read at
each logging interval (trainer.log_every_n_steps), before every checkpoint save and at the end of training; at a
save, every floating tensor of the state is checked too (weights can turn non-finite while the loss that produced
them was still finite). Raising here stops training: checkpoint callbacks run after the others, so a diverged
state is never saved and the previous checkpoint stays the last one.
"""

import math
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
    def __init__(self) -> None:
        self._start = 0  # batches done when this fit started
        self._seen: torch.Tensor | None = None  # batches checked in this fit (on the device)
        self._first_bad: torch.Tensor | None = None  # [batch number in this fit (0: none yet), loss/g, loss/d]

    @staticmethod
    def _stop(trainer: L.Trainer, batch: int, what: str) -> None:
        raise TrainingDiverged(f"training diverged at batch {batch}: {what}; {last_good_checkpoint(trainer)}")

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._start, self._seen, self._first_bad = pl_module.batches_done, None, None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if isinstance(outputs, dict) and all(key in outputs for key in LOSSES):
            losses = torch.stack([outputs[key].detach().float() for key in LOSSES])
            if self._first_bad is None:
                self._seen = torch.zeros((), device=losses.device)
                self._first_bad = torch.zeros(1 + len(LOSSES), device=losses.device)
            self._seen += 1
            first = torch.isfinite(losses).logical_not().any() & (self._first_bad[0] == 0)
            self._first_bad = torch.where(first, torch.cat([self._seen.view(1), losses]), self._first_bad)
        if pl_module.batches_done % trainer.log_every_n_steps == 0:
            self._check_losses(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._check_losses(trainer, pl_module)

    def _check_losses(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if self._first_bad is None:
            return
        batch, *values = self._first_bad.tolist()  # the one read, at a logging interval or a save
        if batch:
            losses = dict(zip(LOSSES.values(), values, strict=True))
            bad = " and ".join(name for name, value in losses.items() if not math.isfinite(value))
            shown = ", ".join(f"{name}={value:g}" for name, value in losses.items())
            self._stop(trainer, self._start + int(batch), f"{bad} not finite ({shown})")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: GANModule, checkpoint: dict[str, Any]) -> None:
        self._check_losses(trainer, pl_module)
        floats = {key: t for key, t in checkpoint["state_dict"].items() if t.is_floating_point()}
        if floats and not torch.stack([torch.isfinite(t).all() for t in floats.values()]).all():
            bad = next(key for key, t in floats.items() if not torch.isfinite(t).all())
            self._stop(trainer, pl_module.batches_done, f"{bad} holds non-finite values, so this state was not saved")
