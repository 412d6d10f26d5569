"""Stops training when G or D diverges, before a non-finite state can reach a checkpoint.

The losses are read from the module's running sum of what it logs (src/gan/interval_means.py; a non-finite loss makes
the sum non-finite), so batches read nothing back to the host (a GPU never waits for the check). Their means since
the last check are taken at each logging batch (trainer.log_every_n_steps, when the module's logging has read them
already), before every checkpoint save and at the end of training; at a save,
every floating tensor of the state is checked too (weights can turn non-finite while the loss that produced
them was still finite). Raising here stops training: checkpoint callbacks run after the others, so a diverged
state is never saved and the previous checkpoint stays the last one.

A run can also run away while staying finite (a learning rate far too high: losses of 1e4..1e29, weights of 1e16):
the check also stops a run whose |mean loss| over the interval passes LOSS_BOUND or whose largest weight passes
WEIGHT_BOUND, bounds no healthy run comes near (Adam moves a weight by about the learning rate a step).
"""

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch

from src.core.checkpoint_files import newest_checkpoint
from src.core.commands import command, override
from src.core.errors import TrainingDiverged
from src.core.layout import RunFolder
from src.gan.contract import GANModule

LOSSES = ("loss/g", "loss/d")
LOSS_BOUND = 1e5
WEIGHT_BOUND = 1e4


def last_good_checkpoint(trainer: L.Trainer) -> str:
    folders = {Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)}
    found = [f for f in (newest_checkpoint(folder) for folder in folders) if f is not None]
    if found:
        path, batches = max(found, key=lambda f: f[1])
        run = RunFolder.of_file(path).root
        return (f"the last good checkpoint is {path} (batch {batches}), left as it was: continue from it with a "
                f"lower learning rate, e.g. {command('src.train', override('resume', run))} model.lr_g=... "
                "model.lr_d=...")
    if trainer.ckpt_path:
        return f"no checkpoint was written since resuming from {trainer.ckpt_path}, which is left as it was"
    return "no checkpoint was written before it"


def largest_weight(module: L.LightningModule) -> torch.Tensor:
    """max |w| over G's and D's parameters, on the device."""
    params = [p.detach() for net in (module.generator, module.discriminator) for p in net.parameters()]
    return torch.stack(torch._foreach_norm(params, float("inf"))).max().float()


class StopOnDivergence(L.Callback):
    def __init__(self) -> None:
        self._checked = 0  # batches done at the last check

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._checked = pl_module.batches_done
        self._losses = pl_module.running_sums.reader("divergence")
        self._losses.means(LOSSES)  # checks start from here: what a resumed checkpoint's sums hold was checked

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if pl_module.batches_done % trainer.log_every_n_steps == 0:
            self._check_losses(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._check_losses(trainer, pl_module)

    def _check_losses(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        """The mean losses since the last check, and the largest weight. A non-finite mean names the batches it
        covers."""
        first, last = self._checked + 1, pl_module.batches_done
        self._checked = last
        losses = self._losses.means(LOSSES)
        if not losses:
            return
        weight = largest_weight(pl_module).item()
        if all(math.isfinite(v) and abs(v) < LOSS_BOUND for v in losses.values()) and weight < WEIGHT_BOUND:
            return
        shown = ", ".join(f"{name}={value:g}" for name, value in losses.items())
        where = f"at batch {last}" if first >= last else f"in batches {first}-{last}"
        mean = "" if first >= last else "mean "
        if not all(math.isfinite(v) for v in losses.values()):
            bad = " and ".join(name for name, value in losses.items() if not math.isfinite(value))
            what = f"{bad} not finite ({mean}{shown})"
        else:
            sizes = ", ".join(f"|{name}| {abs(value):.3g}" for name, value in losses.items())
            what = (f"it ran away ({mean}{sizes}, largest weight {weight:.3g}; a healthy run stays far below |loss| "
                    f"{LOSS_BOUND:.0e} and |weight| {WEIGHT_BOUND:.0e})")
        raise TrainingDiverged(f"training diverged {where}: {what}; {last_good_checkpoint(trainer)}")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: GANModule, checkpoint: dict[str, Any]) -> None:
        self._check_losses(trainer, pl_module)
        floats = {key: t for key, t in checkpoint["state_dict"].items() if t.is_floating_point()}
        if floats and not torch.stack([torch.isfinite(t).all() for t in floats.values()]).all():
            bad = next(key for key, t in floats.items() if not torch.isfinite(t).all())
            raise TrainingDiverged(f"training diverged at batch {pl_module.batches_done}: {bad} holds non-finite "
                                   f"values, so this state was not saved; {last_good_checkpoint(trainer)}")
