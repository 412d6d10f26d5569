"""The training loader of every DataModule: seeded per-epoch shuffle, one shard per rank, exact mid-epoch resume.

Lightning treats a train loader with `state_dict()` / `load_state_dict()` as resumable: it saves the state in each
checkpoint and, on resume, loads it before calling `iter()` and then `sampler.set_epoch(epoch)`. Lightning does not
prefetch from a loader that has a length, so the state taken at the end of batch k says "k batches done".
"""

import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset


class EpochBatches:
    """The batches of dataset indices that one rank draws in one epoch: a pure function of (seed, epoch).

    Like DistributedSampler(drop_last=True): one permutation per epoch shared by all ranks, rank r takes every
    world_size-th index from position r; then full batches only (BatchNorm GANs dislike a tiny last batch).
    With `mirror`, each image is also flipped horizontally or not, with probability 1/2, drawn from the same seeded
    stream after the permutation (so the order is the same with and without it, and a resume flips the same images).
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True,
        mirror: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.shuffle, self.mirror = rank, world_size, shuffle, mirror
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.size // self.world_size) // self.batch_size

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(this epoch's order of all indices, whether each index is flipped)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator) if self.shuffle else torch.arange(self.size)
        return order, torch.rand(self.size, generator=generator) < 0.5

    def _batched(self, values: torch.Tensor) -> torch.Tensor:
        shard = values[self.rank : (self.size // self.world_size) * self.world_size : self.world_size]
        return shard[: len(self) * self.batch_size].view(len(self), self.batch_size)

    def indices(self) -> torch.Tensor:
        """(len(self), batch_size) int64 indices of this rank's batches in the current epoch."""
        return self._batched(self._draw()[0])

    def flips(self) -> torch.Tensor | None:
        """(len(self), batch_size) bool: which images of indices() are flipped horizontally; None without mirror."""
        if not self.mirror:
            return None
        order, flipped = self._draw()
        return self._batched(flipped[order])


class BatchSource(Protocol):
    def iterate(self, batches: torch.Tensor, flips: torch.Tensor | None = None) -> Iterator[Any]:
        """Yield one batch per row of `batches` (dataset indices), in that order; images flipped horizontally
        where `flips` (same shape, bool) says so."""


class InMemoryBatches:
    """Batches by indexing tensors that hold the whole dataset (uint8 images; on the training device if asked);
    flips are applied batch-wise there."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def iterate(self, batches: torch.Tensor,
                flips: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = batches.to(self.images.device)
        flips = flips.to(self.images.device) if flips is not None else None
        for i, index in enumerate(batches):  # index_select: much faster than images[index] for uint8 on the CPU
            images = self.images.index_select(0, index)
            if flips is not None:
                images = torch.where(flips[i].view(-1, 1, 1, 1), images.flip(-1), images)
            yield images, self.labels.index_select(0, index)


class Mirrorable(Dataset):
    """A map-style dataset whose items can also be asked for as (index, flipped): the image flipped horizontally
    when `flipped`, in the worker that decodes it."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, bool]) -> Any:
        index, flipped = key if isinstance(key, tuple) else (key, False)
        image, label = self.dataset[index]
        return (image.flip(-1) if flipped else image), label


class _Planned:
    """A batch sampler whose batches are set before each pass (it is read in the main process only)."""

    def __init__(self) -> None:
        self.batches: list[list] = []  # of dataset indices, or of (index, flipped) pairs

    def __iter__(self) -> Iterator[list]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class PerItemBatches:
    """Batches from a map-style dataset item by item (PIL decode + torchvision transforms), in worker processes."""

    def __init__(self, dataset: Dataset, num_workers: int = 0, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self._plan = _Planned()
        # Its own generator: a DataLoader draws its workers' base seed from the global random stream on each new
        # iterator, which with persistent workers happens once per process, not once per epoch; a resumed run would
        # then draw the training noise one step off the straight run. Items are decoded deterministically, so the
        # workers' seeds do not matter.
        self._loader = DataLoader(
            Mirrorable(dataset),
            batch_sampler=self._plan,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            generator=torch.Generator(),
        )

    def iterate(self, batches: torch.Tensor, flips: torch.Tensor | None = None) -> Iterator[Any]:
        planned = batches.tolist()
        if flips is not None:
            planned = [list(zip(row, flipped, strict=True)) for row, flipped in zip(planned, flips.tolist(),
                                                                                      strict=True)]
        self._plan.batches = planned
        return iter(self._loader)


class ResumableLoader:
    """Iterates `sampler`'s batches for the current epoch through `source`; stateful for Lightning's resume."""

    def __init__(self, sampler: EpochBatches, source: BatchSource) -> None:
        self.sampler = sampler  # the attribute name Lightning looks for to call set_epoch() each epoch
        self.source = source
        self._position = (sampler.epoch, 0)  # (epoch, batches handed out in it)
        self._resume_from: tuple[int, int] | None = None  # a position loaded from a checkpoint

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Any]:
        # A generator: this body runs at the first next(), after Lightning's set_epoch() for the epoch.
        epoch = self.sampler.epoch
        resume, self._resume_from = self._resume_from, None
        done = resume[1] if resume is not None and resume[0] == epoch else 0
        self._position = (epoch, done)
        flips = self.sampler.flips()
        for batch in self.source.iterate(self.sampler.indices()[done:], None if flips is None else flips[done:]):
            done += 1
            self._position = (epoch, done)
            yield batch

    def state_dict(self) -> dict[str, int]:
        epoch, done = self._position
        if self.sampler.epoch != epoch:  # a new epoch was announced by set_epoch() but not started yet
            epoch, done = self.sampler.epoch, 0
        s = self.sampler
        return {"epoch": epoch, "batches_done": done, "seed": s.seed, "size": s.size, "batch_size": s.batch_size,
                "world_size": s.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        s = self.sampler
        same = {"seed": s.seed, "size": s.size, "batch_size": s.batch_size, "world_size": s.world_size}
        changed = {k: (state.get(k), v) for k, v in same.items() if state.get(k) != v}
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if changed:
            warnings.warn(
                f"the checkpoint's data order was made with other settings {changed} (saved, now): "
                f"resuming at the start of epoch {epoch} instead of mid-epoch",
                stacklevel=2,
            )
            done = 0
        if done >= len(self):  # saved at the end of an epoch: the next one starts from its beginning
            epoch, done = epoch + 1, 0
        s.set_epoch(epoch)
        self._position = self._resume_from = (epoch, done)
