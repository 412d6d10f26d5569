"""Checkpoints a run can be resumed from exactly: last.ckpt every N batches, and epoch_NNN.ckpt + last.ckpt at
the last batch of every epoch; last.ckpt once more when training ends, if that state is not saved yet.

Every save happens at a batch end, through the public `trainer.save_checkpoint` (so the trainer's CheckpointIO
writes it atomically, see src/run/atomic_io.py, and every rank joins under DDP). Lightning's stock ModelCheckpoint
saves per epoch later, in on_train_epoch_end, and a run with a step budget (max_steps, i.e. max_batches) resumed
from such a state trains one batch too many in the old epoch before starting the next one. last.ckpt is always a
full file, never a link, and is overwritten in place (no -v1 copies).
"""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from src.callbacks.loop_state import at_epoch_end
from src.gan.contract import GANModule
from src.run.layout import RunFolder


class BatchCheckpoint(Checkpoint):  # a Checkpoint: Lightning runs it after the other callbacks and adds no default
    def __init__(self, dirpath: str | Path, every_n_batches: int = 500, filename: str = "epoch_{epoch:03d}") -> None:
        self.dirpath = Path(dirpath)
        self.every_n_batches = every_n_batches
        self.filename = filename
        self._saved_step = -1  # global_step of the state last written

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._saved_step = trainer.global_step  # a resumed state is on disk already

    def _save(self, trainer: L.Trainer, name: str) -> None:
        trainer.save_checkpoint(self.dirpath / name, weights_only=False)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if trainer.fast_dev_run or trainer.global_step == self._saved_step:
            return
        epoch_end = at_epoch_end(trainer)
        if epoch_end:
            self._save(trainer, self.filename.format(epoch=trainer.current_epoch) + ".ckpt")
        if epoch_end or (self.every_n_batches > 0 and pl_module.batches_done % self.every_n_batches == 0):
            self._save(trainer, RunFolder.LAST_CHECKPOINT)

    def on_train_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if not trainer.fast_dev_run and trainer.global_step != self._saved_step:
            self._save(trainer, RunFolder.LAST_CHECKPOINT)
