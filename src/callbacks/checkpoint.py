"""Checkpoints a run can be resumed from exactly: last.ckpt every N batches, and epoch_NNN.ckpt + last.ckpt at
the last batch of every epoch; last.ckpt once more when training ends, if that state is not saved yet.

Every save happens at a batch end. Lightning's stock per-epoch save happens later, in on_train_epoch_end, and a
run with a step budget (max_steps, i.e. max_batches) resumed from such a state trains one batch too many in the
old epoch before starting the next one. Files are written by the trainer's CheckpointIO (atomic, see
src/atomic_io.py); last.ckpt is always a full file, never a link, and is overwritten in place (no -v1 copies).
"""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class BatchCheckpoint(ModelCheckpoint):
    def __init__(self, dirpath: str | Path, every_n_batches: int = 500, filename: str = "epoch_{epoch:03d}") -> None:
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            auto_insert_metric_name=False,
            save_last=True,
            save_top_k=-1,
            every_n_train_steps=0,
            every_n_epochs=0,
            save_on_train_epoch_end=False,
            enable_version_counter=False,
        )
        self.every_n_batches = every_n_batches

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if self._should_skip_saving_checkpoint(trainer):  # fast_dev_run, sanity check, already saved at this step
            return
        epoch_end = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        due = self.every_n_batches > 0 and pl_module.batches_done % self.every_n_batches == 0
        if epoch_end or due:
            metrics = self._monitor_candidates(trainer)
            if epoch_end:
                self._save_topk_checkpoint(trainer, metrics)
            self._save_last_checkpoint(trainer, metrics)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
