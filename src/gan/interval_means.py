"""Means of per-batch scalars over a logging interval, summed on the device: adding a batch reads nothing back to
the host (a GPU never waits for it); only the batch that logs reads the means.

A batch's scalars are stacked into one vector and added in one operation; batches that log another set of names
(a lazy penalty's batches add one) are summed in a vector of their own, merged when the means are taken."""

import torch

Names = tuple[str, ...]


class IntervalMeans:
    def __init__(self) -> None:
        self._sums: dict[Names, torch.Tensor] = {}
        self._counts: dict[Names, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        """A scalar missing from some batches (a lazy penalty) is averaged over the batches that had it."""
        names = tuple(values)
        batch = torch.stack([value.detach().float() for value in values.values()])  # a new tensor: safe to keep
        self._sums[names] = self._sums[names] + batch if names in self._sums else batch
        self._counts[names] = self._counts.get(names, 0) + 1

    def pop(self) -> dict[str, torch.Tensor]:
        """The means since the last pop (still on the device), and a fresh start."""
        totals: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for names, sums in self._sums.items():
            for name, total in zip(names, sums.unbind(), strict=True):
                totals[name] = totals[name] + total if name in totals else total
                counts[name] = counts.get(name, 0) + self._counts[names]
        self._sums, self._counts = {}, {}
        return {name: total / counts[name] for name, total in totals.items()}

    def state_dict(self) -> dict:
        """The running sums, for a checkpoint: a run resumed mid-interval logs the same means as one never stopped."""
        return {"groups": [[list(names), sums, self._counts[names]] for names, sums in self._sums.items()]}

    def load_state_dict(self, state: dict) -> None:
        if "groups" not in state:  # checkpoints from before the vectors: one sum per name
            state = {"groups": [[[name], total.reshape(1), state["counts"][name]]
                                for name, total in state["sums"].items()]}
        self._sums = {tuple(names): sums for names, sums, _ in state["groups"]}
        self._counts = {tuple(names): count for names, _, count in state["groups"]}
