"""Means of per-batch scalars over a logging interval, summed on the device: adding a batch reads nothing back to
the host (a GPU never waits for it); only the batch that logs reads the means."""

import torch


class IntervalMeans:
    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        """A scalar missing from some batches (a lazy penalty) is averaged over the batches that had it."""
        for name, value in values.items():
            value = value.detach().float()
            self._sums[name] = self._sums[name] + value if name in self._sums else value
            self._counts[name] = self._counts.get(name, 0) + 1

    def pop(self) -> dict[str, torch.Tensor]:
        """The means since the last pop (still on the device), and a fresh start."""
        means = {name: total / self._counts[name] for name, total in self._sums.items()}
        self._sums, self._counts = {}, {}
        return means

    def state_dict(self) -> dict:
        """The running sums, for a checkpoint: a run resumed mid-interval logs the same means as one never stopped."""
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self._sums, self._counts = dict(state["sums"]), dict(state["counts"])
