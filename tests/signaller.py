"""Test-only callbacks that send a stop signal to their own process, deterministically, at a chosen moment of
training: the preemptions, Ctrl-Cs and SLURM warnings the signal tests recover from."""

import os

import lightning as L


class SignalAtBatch(L.Callback):
    """Sends `signum` to its own process (rank `rank` only) as batch `batch` + 1 starts: the signal arrives before
    that batch's optimizer steps, which must still run before training stops. Never fires in a resumed run."""

    def __init__(self, batch: int, signum: int, rank: int = 0) -> None:
        self.batch, self.signum, self.rank = batch, signum, rank

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.ckpt_path is None and pl_module.batches_done == self.batch and trainer.global_rank == self.rank:
            os.kill(os.getpid(), self.signum)


class SignalDuringSave(L.Callback):
    """Sends `signum` while a checkpoint of batch `batch` or later is being saved: the second signal of a user who
    presses Ctrl-C twice."""

    def __init__(self, batch: int, signum: int) -> None:
        self.batch, self.signum = batch, signum

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint) -> None:
        if pl_module.batches_done >= self.batch:
            os.kill(os.getpid(), self.signum)


class ReportBatches(L.Callback):
    """Prints how many batches each rank trained, when training ends: all ranks must stop at the same batch."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print(f"[test] rank {trainer.global_rank} trained until batch {pl_module.batches_done}", flush=True)


class SignalAtTrainStart(L.Callback):
    """Sends `signum` as training starts, while Lightning's own SIGTERM handler is still the one installed."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        os.kill(os.getpid(), self.signum)


class SignalAtFitEnd(L.Callback):
    """Sends `signum` as the run's last files (weights, GIF) are about to be written: listed before the callbacks
    that write them."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        os.kill(os.getpid(), self.signum)


class SignalAtSetup(L.Callback):
    """Sends `signum` while the run is being set up, after its data was prepared and before training starts."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        os.kill(os.getpid(), self.signum)
