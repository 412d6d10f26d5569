"""Checkpoints a run can be resumed from exactly: last.ckpt every N batches, and epoch_NNN.ckpt + last.ckpt at
the last batch of every epoch (the newest `keep_epochs` epoch files are kept); last.ckpt at the batch that ends
training (so `resume=<run> max_batches=<more>` goes on with the same epoch's next batch, exactly as if the run had
never stopped); and last.ckpt at the end of the batch a stop signal arrived in.

Every save happens at a batch end, through the public `trainer.save_checkpoint` (so the trainer's CheckpointIO
writes it atomically, see src/core/atomic_io.py, and every rank joins under DDP). Lightning's stock ModelCheckpoint
saves per epoch later, in on_train_epoch_end, and a run with a step budget (max_steps, i.e. max_batches) resumed
from such a state trains one batch too many in the old epoch before starting the next one. last.ckpt is always a
full file, never a link, and is overwritten in place (no -v1 copies).

SIGTERM, SIGINT and SIGUSR1 (src/core/signals.py) stop training at the end of the batch they arrive in: the state
saved then is the one a periodic save of that batch would hold, so `resume=<run>` continues exactly. Under DDP the
ranks agree on it with one all-reduce of one number per batch; the handlers replace Lightning's own SIGTERM
handler, which would end the process with status 0 and no checkpoint.
"""

import re
import signal
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from src.core.atomic_io import WriteFailed
from src.core.checkpoint_files import newest_checkpoint
from src.core.commands import command, override
from src.core.errors import UserError
from src.core.layout import RunFolder
from src.core.loop import at_epoch_end
from src.core.signals import Stop, StopSignals, received_before_training, record_stop
from src.gan.contract import GANModule


class BatchCheckpoint(Checkpoint):  # a Checkpoint: Lightning runs it after the other callbacks and adds no default
    def __init__(self, dirpath: str | Path, every_n_batches: int = 500, filename: str = "epoch_{epoch:03d}",
                 keep_epochs: int | None = None) -> None:
        if keep_epochs is not None and keep_epochs < 0:
            raise UserError(f"callbacks.checkpoint.keep_epochs must be 0 or more (null keeps all), got {keep_epochs}")
        self.dirpath = Path(dirpath)
        self.every_n_batches = every_n_batches
        self.filename = filename
        self.keep_epochs = keep_epochs
        self._saved_step = -1  # global_step of the state last written
        self._start_step = 0  # global_step when this process started training
        self.signals = StopSignals()

    # --- periodic and epoch checkpoints ------------------------------------------------------------------------
    def _save(self, trainer: L.Trainer, name: str) -> Path:
        path = self.dirpath / name
        trainer.save_checkpoint(path, weights_only=False)
        self._saved_step = trainer.global_step
        return path

    def _epoch_number(self, name: str) -> int | None:
        pattern = re.sub(r"\\\{epoch[^}]*\\\}", r"(\\d+)", re.escape(self.filename)) + r"\.ckpt"
        match = re.fullmatch(pattern, name)
        return int(match.group(1)) if match else None

    def _drop_old_epochs(self, trainer: L.Trainer) -> None:
        """Delete all but the newest keep_epochs epoch files up to this epoch (called once the new one is in place;
        files of later epochs, from a run resumed from an earlier checkpoint, are left alone)."""
        if self.keep_epochs is None or not trainer.is_global_zero:
            return
        epochs = {n: p for p in self.dirpath.glob("*.ckpt") if (n := self._epoch_number(p.name)) is not None}
        older = sorted(n for n in epochs if n <= trainer.current_epoch)
        for n in older[: max(len(older) - self.keep_epochs, 0)]:
            epochs[n].unlink(missing_ok=True)

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._saved_step = self._start_step = trainer.global_step  # a resumed state is on disk already
        self.signals.install()  # after Lightning's own handlers (registered just before training starts)
        if trainer.received_sigterm:  # a SIGTERM in the moment before: Lightning's handler took it
            self.signals.received = signal.SIGTERM
        self.signals.received = self.signals.received or received_before_training()  # e.g. during data preparation
        if signum := self._agreed_signal(trainer):
            self._stop(trainer, pl_module, signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        # Several processes agree on a signal through a collective and a device read: only at logging intervals
        # (the same batches on every rank), so other batches never wait on the device.
        ask = trainer.world_size == 1 or pl_module.batches_done % trainer.log_every_n_steps == 0
        signum = self._agreed_signal(trainer) if ask else 0
        if not trainer.fast_dev_run and trainer.global_step != self._saved_step:
            epoch_end = at_epoch_end(trainer)
            if epoch_end:
                self._save(trainer, self.filename.format(epoch=trainer.current_epoch) + ".ckpt")
            periodic = self.every_n_batches > 0 and pl_module.batches_done % self.every_n_batches == 0
            if epoch_end or signum or periodic or self._last_batch(trainer):
                self._save(trainer, RunFolder.LAST_CHECKPOINT)
            if epoch_end:
                self._drop_old_epochs(trainer)
        if signum:
            self._stop(trainer, pl_module, signum)

    @staticmethod
    def _last_batch(trainer: L.Trainer) -> bool:
        """Whether training ends after this batch: the step budget is spent, or a callback (the wall-clock Timer,
        the divergence check) asked to stop. Saved here, the state is mid-epoch, as a periodic save holds it; by
        on_train_end Lightning has closed the epoch (epoch + 1, the rest of its batches skipped on resume)."""
        return trainer.should_stop or 0 < trainer.max_steps <= trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self.signals.restore()
        if not trainer.fast_dev_run and trainer.global_step != self._saved_step:
            self._save(trainer, RunFolder.LAST_CHECKPOINT)

    # --- stop signals ------------------------------------------------------------------------------------------
    def _agreed_signal(self, trainer: L.Trainer) -> int:
        """The stop signal any rank received (0: none), the same number on every rank."""
        if trainer.world_size == 1:
            return self.signals.received
        received = torch.tensor(self.signals.received, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(received, reduce_op="max").item())

    def _stop(self, trainer: L.Trainer, pl_module: GANModule, signum: int) -> None:
        trainer.should_stop = True
        name, batch = signal.Signals(signum).name, pl_module.batches_done
        last = self.dirpath / RunFolder.LAST_CHECKPOINT
        run = RunFolder.of_file(last).root
        if trainer.global_step == self._start_step:
            message = f"stopped by {name} before batch {batch + 1}: nothing new to save"
            if trainer.ckpt_path:
                message += f"; continue with {command('src.train', override('resume', run))}"
        elif trainer.fast_dev_run:
            message = f"stopped by {name} at batch {batch}: fast_dev_run saves no checkpoint"
        else:
            message = (f"stopped by {name} at batch {batch}: saved {last}; continue with "
                       f"{command('src.train', override('resume', run))}")
        record_stop(Stop(signum, message, report=trainer.is_global_zero))

    # --- failures ----------------------------------------------------------------------------------------------
    def on_exception(self, trainer: L.Trainer, pl_module: GANModule, exception: BaseException) -> None:
        self.signals.restore()
        failed = exception
        while failed is not None and not isinstance(failed, WriteFailed):
            failed = failed.__cause__ or failed.__context__
        if failed is not None:
            failed.then = self._continue_from(pl_module)

    def _continue_from(self, pl_module: GANModule) -> str:
        """What to do once a failed write's cause is fixed, naming the checkpoint that is intact."""
        found = newest_checkpoint(self.dirpath)
        if found is None:
            return "run again (no checkpoint of this run was written yet)"
        path, batches = found
        run = RunFolder.of_file(path).root
        return (f"continue with {command('src.train', override('resume', run))} (its newest checkpoint, {path} at "
                f"batch {batches}, is intact)")
