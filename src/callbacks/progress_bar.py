"""Lightning's progress bar, showing the losses the GAN module last logged.

Metrics logged with `self.log(..., prog_bar=True)` are read back from the device on every batch, logged or not
(Lightning converts them at each batch end), which makes a GPU wait once a batch. The module keeps the means it
logged as plain floats (`logged_means`), and this bar shows those: the bar reads nothing from the device.

The bar is first drawn when its epoch starts, already knowing its total (Lightning draws one at the start of training,
`Training: 0/?`). A run resumed mid-epoch gets no `on_train_epoch_start` from Lightning; the bar is made at the first
batch instead, with the batches of the epoch already done (else it shows `Training: 40/?`). A run stopped mid-epoch
(max_minutes, a signal) ends on the bar's true count, drawn once when the bar closes.

The bar counts an epoch; its postfix places the whole run: `batch=<done>/<max_batches>` and `left=` the time to the
budget at this session's rate (or to max_minutes when that comes first), from host-side counters only."""

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Timer, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, convert_inf
from tqdm import tqdm

SHOWN = ("loss/g", "loss/d")


class ProgressBar(TQDMProgressBar):
    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:  # no bar yet: see show_epoch
        self._epoch_sized = False
        self._done = 0
        self._session_start, self._session_from = time.monotonic(), trainer.global_step

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.show_epoch(trainer, done=0, total=self.total_train_batches)

    def show_epoch(self, trainer: L.Trainer, done: int, total: int | float) -> None:
        """The epoch's bar drawn once, its description, count and total already right."""
        description, total = f"Epoch {trainer.current_epoch}", convert_inf(total)
        if self._train_progress_bar is None or self._leave:  # Lightning's bar, made with what it will show
            self._train_progress_bar = Tqdm(desc=description, total=total, initial=done, leave=True,
                                            position=2 * self.process_position, disable=self.is_disabled,
                                            dynamic_ncols=True, file=sys.stdout, smoothing=0,
                                            bar_format=self.BAR_FORMAT)
        else:
            bar = self._train_progress_bar
            bar.set_description(description, refresh=False)
            bar.total, bar.initial = total, 0  # its rate counts the batches of this epoch
            bar.reset()  # draws it
        self._epoch_sized, self._done = True, done

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
                             ) -> None:
        if not self._epoch_sized:  # resumed mid-epoch: batch_idx batches of this epoch are done
            total = trainer.num_training_batches
            if trainer.max_steps > 0:  # the budget may end this epoch early (Lightning's counter counts batches)
                total = min(total, batch_idx + trainer.max_steps - trainer.global_step)
            self.show_epoch(trainer, done=batch_idx, total=total)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._done = batch_idx + 1
        bar = self.train_progress_bar
        if self._should_update(self._done, bar.total):  # count and losses in one draw (Lightning draws twice)
            bar.n = self._done
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The count and losses as they are, not drawn: the next draw (the next epoch, a line printed, the bar's close)
        # shows them. A run stopped mid-epoch would otherwise show a count refresh_rate behind, drawn twice more.
        bar = self.train_progress_bar
        if not bar.disable:
            bar.n = self._done
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        if self._leave:
            bar.close()

    def on_train_end(self, *args: Any) -> None:
        if self._train_progress_bar is not None:  # None: no batch was trained
            self._train_progress_bar.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Closed now, before the error line is printed: else tqdm draws it once more, below that line, at exit.
        for bar in (self._train_progress_bar, self._val_progress_bar):
            if bar is not None:
                bar.close()

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        logged = getattr(pl_module, "logged_means", {})
        return self.whole_run(trainer) | super().get_metrics(trainer, pl_module) | {
            name: f"{logged[name]:.3f}" for name in SHOWN if name in logged}

    def whole_run(self, trainer: L.Trainer) -> dict[str, str]:
        """Batches done of the budget (Lightning's step counter counts batches here) and the time left: at this
        session's rate to max_batches, or to max_minutes (Lightning's Timer, across resumes) when that is sooner."""
        done, budget = trainer.global_step, trainer.max_steps
        shown = {"batch": f"{done}/{budget}" if budget > 0 else str(done)}
        start, start_step = getattr(self, "_session_start", 0.0), getattr(self, "_session_from", done)
        trained, elapsed = done - start_step, time.monotonic() - start
        left = [(budget - done) * elapsed / trained] if budget > 0 and trained > 0 else []
        left += [max(0.0, t.time_remaining()) for t in trainer.callbacks
                 if isinstance(t, Timer) and t.time_remaining() is not None]
        if left:
            shown["left"] = tqdm.format_interval(min(left))
        return shown
