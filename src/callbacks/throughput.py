"""Images per second of the whole training loop (data, both optimizer steps, logging), after a warm-up."""

import json
import time
from pathlib import Path

import lightning as L

from src.gan.contract import GANModule


class Throughput(L.Callback):
    def __init__(self, warmup_batches: int = 5, out_file: str | None = None) -> None:
        self.warmup_batches = warmup_batches
        self.out_file = out_file
        self._start: float | None = None
        self._images = 0
        self.images_per_sec = float("nan")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: GANModule, batch, batch_idx: int) -> None:
        if self._start is None and pl_module.batches_done >= self.warmup_batches:
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs, batch, batch_idx) -> None:
        if self._start is None:
            return
        self._images += batch[0].size(0) * trainer.world_size
        self.images_per_sec = self._images / (time.perf_counter() - self._start)
        step = pl_module.batches_done
        if step % trainer.log_every_n_steps == 0:  # straight to the loggers: self.log costs ~1 ms a call on a CPU
            for logger in trainer.loggers:
                logger.log_metrics({"perf/images_per_sec": self.images_per_sec}, step=step)

    def on_fit_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if self.out_file and trainer.is_global_zero:
            Path(self.out_file).write_text(json.dumps({"images_per_sec": self.images_per_sec, "images": self._images}))
