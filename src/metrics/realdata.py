"""Real images as uint8 batches (exactly the pixels the GAN was trained on), from a DataModule's datasets."""

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from src.core.errors import UserError
from src.gan.sampling import to_uint8


def split_dataset(datamodule, split: str) -> Dataset:
    """The DataModule's train or test set: images in [-1, 1] at model size, and integer labels."""
    if not hasattr(datamodule, "make_dataset"):
        raise UserError(f"{type(datamodule).__name__} has no make_dataset(): metrics need the real images")
    datamodule.prepare_data()
    return datamodule.make_dataset(datamodule.transform(), train=split == "train")


def uint8_batches(
    dataset: Dataset, batch_size: int, num_workers: int = 0, indices: Sequence[int] | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images N x C x H x W, int64 labels) batches, in order; `indices` picks a subset."""
    source = Subset(dataset, list(indices)) if indices is not None else dataset
    loader = DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for images, labels in loader:
        yield to_uint8(images), torch.as_tensor(labels, dtype=torch.long)


def load_uint8(dataset: Dataset, limit: int | None = None, batch_size: int = 500,
               num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `limit` images (all when None) in memory as uint8, with their labels."""
    indices = range(min(limit, len(dataset))) if limit is not None else None
    images, labels = zip(*uint8_batches(dataset, batch_size, num_workers, indices), strict=True)
    return torch.cat(images), torch.cat(labels)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1], the inverse of sampling.to_uint8."""
    return images.float() / 127.5 - 1
