"""Keeps a resumed run's TensorBoard curves whole: nothing missing before a checkpoint, nothing twice after it.

- After every checkpoint the event files are flushed (at the next batch's start, since Lightning hands the
  checkpointed batch's scalars to the logger only after the checkpoint hooks), so a killed process loses no
  point logged before its last checkpoint. Only a kill in the few milliseconds between a checkpoint's rename
  and the next batch can lose that one batch's point.
- When a run resumes at batch k, a SessionLog.START event at step k tells TensorBoard to drop what the killed
  process logged from step k on (it is logged again, identically, by the resumed run). This is TensorBoard's
  own mechanism for restarted jobs (SummaryWriter's purge_step), applied to the logger Lightning already made.
"""

from typing import Any

import lightning as L
from tensorboard.compat.proto.event_pb2 import Event, SessionLog

from src.callbacks.loggers import tensorboard_writers
from src.gan.contract import GANModule


class TensorBoardResume(L.Callback):
    def __init__(self) -> None:
        self._flush_due = False

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if trainer.ckpt_path is None or not trainer.is_global_zero:
            return
        step = pl_module.batches_done
        for writer in tensorboard_writers(trainer):
            writer.file_writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: GANModule, checkpoint: dict[str, Any]) -> None:
        self._flush_due = True

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: GANModule, batch: Any, batch_idx: int
                             ) -> None:
        if self._flush_due and trainer.is_global_zero:
            for writer in tensorboard_writers(trainer):
                writer.flush()
        self._flush_due = False
