"""A test-only callback, added from the command line (+callbacks.killer=...), that SIGKILLs its own process:
the crash the resume tests recover from. It never fires in a resumed run."""

import os
import signal

import lightning as L


class KillAfterBatch(L.Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.ckpt_path is None and pl_module.batches_done == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
