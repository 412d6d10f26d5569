"""The one running sum of what a batch logs, kept on the device: adding a batch reads nothing back to the host (a GPU
never waits for it). The module's logging takes the means at each logging batch (`pop`); other readers (the loss
line, the divergence stop) take the means since their own last read (`reader`), at intervals of their own, from the
same sum.

A batch's scalars are stacked into one vector and added in one operation; batches that log another set of names
(a lazy penalty's batches add one) are summed in a vector of their own, merged when the means are taken. A reader
keeps on the host what the logging batches took from the sum since it last read (its backlog, as sums and counts):
reading costs one read of the sum of the interval under way, none right after a logging batch."""

import torch

Names = tuple[str, ...]
Totals = dict[str, list[float]]  # name -> [sum, count]


class IntervalMeans:
    def __init__(self) -> None:
        self._sums: dict[Names, torch.Tensor] = {}
        self._counts: dict[Names, int] = {}
        self._backlogs: dict[str, Totals] = {}  # reader -> what logging batches took since that reader last read

    def add(self, values: dict[str, torch.Tensor]) -> None:
        """A scalar missing from some batches (a lazy penalty) is averaged over the batches that had it."""
        names = tuple(values)
        batch = torch.stack([value.detach().float() for value in values.values()])  # a new tensor: safe to keep
        self._sums[names] = self._sums[names] + batch if names in self._sums else batch
        self._counts[names] = self._counts.get(names, 0) + 1

    def totals(self) -> Totals:
        """Sum and count per name of the interval under way, on the host (one read; none when it is empty)."""
        if not self._sums:
            return {}
        values = torch.cat(list(self._sums.values())).tolist()
        totals: Totals = {}
        for names, count in self._counts.items():
            for name in names:
                total = totals.setdefault(name, [0.0, 0])
                total[0], total[1] = total[0] + values.pop(0), total[1] + count
        return totals

    def pop(self) -> dict[str, float]:
        """The means since the last pop (one read), and a fresh start; every reader's backlog keeps the sums."""
        totals = self.totals()
        self._sums, self._counts = {}, {}
        for backlog in self._backlogs.values():
            for name, (total, count) in totals.items():
                kept = backlog.setdefault(name, [0.0, 0])
                kept[0], kept[1] = kept[0] + total, kept[1] + count
        return {name: total / count for name, (total, count) in totals.items()}

    def reader(self, name: str) -> "Reader":
        """The reader called `name` (its backlog is checkpointed with the sums); a new one starts from now."""
        if name not in self._backlogs:
            self._backlogs[name] = {k: [-total, -count] for k, (total, count) in self.totals().items()}
        return Reader(self, name)

    def state_dict(self) -> dict:
        """The running sums and the readers' backlogs, for a checkpoint: a run resumed mid-interval logs and prints
        the same means as one never stopped."""
        return {"groups": [[list(names), sums, self._counts[names]] for names, sums in self._sums.items()],
                "readers": {reader: {k: list(v) for k, v in backlog.items()} for reader, backlog in
                            self._backlogs.items()}}

    def load_state_dict(self, state: dict) -> None:
        if "groups" not in state:  # checkpoints from before the vectors: one sum per name
            state = {"groups": [[[name], total.reshape(1), state["counts"][name]]
                                for name, total in state["sums"].items()]}
        self._sums = {tuple(names): sums for names, sums, _ in state["groups"]}
        self._counts = {tuple(names): count for names, _, count in state["groups"]}
        self._backlogs = {reader: {k: list(v) for k, v in backlog.items()}
                          for reader, backlog in state.get("readers", {}).items()}


class Reader:
    def __init__(self, sums: IntervalMeans, name: str) -> None:
        self._sums, self._name = sums, name

    def means(self, names: tuple[str, ...]) -> dict[str, float]:
        """The means of `names` since this reader last read (names no batch logged since are left out)."""
        backlog, current = self._sums._backlogs[self._name], self._sums.totals()
        means = {}
        for name in names:
            total, count = (a + b for a, b in zip(backlog.get(name, (0.0, 0)), current.get(name, (0.0, 0)),
                                                  strict=True))
            if count:
                means[name] = total / count
        self._sums._backlogs[self._name] = {k: [-total, -count] for k, (total, count) in current.items()}
        return means

    def carry_over(self, totals: Totals) -> None:
        """Sums a reader kept before it read from here (a checkpoint of an earlier version), counted as unread."""
        backlog = self._sums._backlogs[self._name]
        for name, (total, count) in totals.items():
            kept = backlog.setdefault(name, [0.0, 0])
            kept[0], kept[1] = kept[0] + total, kept[1] + count
