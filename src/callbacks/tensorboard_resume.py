"""Keeps a resumed run's logged curves whole: nothing missing before a checkpoint, nothing twice after it.

- After every checkpoint TensorBoard's event files are flushed and CSV's buffered rows written (at the next batch's
  start, since Lightning hands the checkpointed batch's scalars to the logger only after the checkpoint hooks), so a
  killed process loses no point logged before its last checkpoint. Only a kill in the few milliseconds between a
  checkpoint's rename and the next batch can lose that one batch's point.
- When a run resumes at batch k, what the killed process logged from step k on is dropped (it is logged again,
  identically, by the resumed run): src/callbacks/loggers.py gives the TensorBoard logger purge_step=k (its
  SummaryWriter writes the SessionLog.START event TensorBoard purges by) and keeps only CSV's rows before k.
"""

from typing import Any

import lightning as L

from src.callbacks.loggers import flush
from src.gan.contract import GANModule


class TensorBoardResume(L.Callback):
    def __init__(self) -> None:
        self._flush_due = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: GANModule, checkpoint: dict[str, Any]) -> None:
        self._flush_due = True

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: GANModule, batch: Any, batch_idx: int
                             ) -> None:
        if self._flush_due and trainer.is_global_zero:
            flush(trainer)
        self._flush_due = False
