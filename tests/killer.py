"""Test-only callbacks, added from the command line or a test, that end training abruptly: the crashes the
resume tests recover from. They never fire in a resumed run."""

import os
import signal

import lightning as L


class KillAfterBatch(L.Callback):
    """SIGKILLs its own process after `batch` batches. flush_logs first pushes every TensorBoard point to disk:
    the worst case for duplicated steps after the resume."""

    def __init__(self, batch: int, flush_logs: bool = True) -> None:
        self.batch, self.flush_logs = batch, flush_logs

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.ckpt_path is None and pl_module.batches_done == self.batch:
            if self.flush_logs:
                for logger in trainer.loggers:
                    logger.experiment.flush()
            os.kill(os.getpid(), signal.SIGKILL)


class CrashAfterBatch(L.Callback):
    """Raises after `batch` batches: an in-process crash (cheaper than a subprocess); in a resumed run too with
    in_resumed_run=true."""

    def __init__(self, batch: int, in_resumed_run: bool = False) -> None:
        self.batch, self.in_resumed_run = batch, in_resumed_run

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if (trainer.ckpt_path is None or self.in_resumed_run) and pl_module.batches_done == self.batch:
            raise RuntimeError(f"simulated crash after batch {self.batch}")


class FullDiskInLogger(L.Callback):
    """From batch `batch` on, TensorBoard's event writer fails as on a full disk: every write, flush and close
    raises ENOSPC (its background writer re-raises a failed write at each later call)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if pl_module.batches_done != self.batch:
            return
        import errno

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        writer = trainer.logger.experiment.file_writer.event_writer
        writer.add_event = writer.flush = writer.close = full
