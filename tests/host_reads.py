"""Counts device-to-host reads during training, per batch: every Tensor method that makes a GPU wait for its queue
(item, tolist, numpy, cpu, float/int/bool/index conversions) is wrapped while the fit runs. On a CPU these cost
nothing, which is why the count, not the time, is what a CPU test can check."""

import functools
from collections import Counter
from collections.abc import Callable

import lightning as L
import torch

READS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")


class HostReadCounter(L.Callback):
    """reads[b]: the reads made from the start of batch b (1-based) until the start of the next one, so what the
    hooks after a batch (logging, grids, checkpoints, epoch end) read counts for that batch."""

    last: "HostReadCounter | None" = None  # the newest instance (train() builds it from the config)

    def __init__(self) -> None:
        HostReadCounter.last = self
        self.reads: Counter[int] = Counter()
        self.where: dict[int, Counter[str]] = {}
        self.epoch_ends: set[int] = set()
        self._batch = 0
        self._originals: dict[str, Callable] = {}

    def _wrap(self, name: str, original: Callable) -> Callable:
        @functools.wraps(original)
        def counted(tensor: torch.Tensor, *args, **kwargs):
            if self._batch:
                self.reads[self._batch] += 1
                self.where.setdefault(self._batch, Counter())[name] += 1
            return original(tensor, *args, **kwargs)
        return counted

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name in READS:
            self._originals[name] = getattr(torch.Tensor, name)
            setattr(torch.Tensor, name, self._wrap(name, self._originals[name]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._batch = pl_module.batches_done + 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_ends.add(pl_module.batches_done)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._batch = 0
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)
