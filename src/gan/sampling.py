"""Turning generator outputs into pictures: uint8 conversion, grids, batched sampling."""

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import make_grid, save_image

from src.run.atomic_io import atomic_write


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> [0, 255] uint8, rounding to nearest."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A (C, H, W) float grid in [0, 1] for TensorBoard or PNG."""
    return make_grid(images.float().clamp(-1, 1), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """A PNG grid, written atomically (src/run/atomic_io.py)."""
    picture = grid(images, nrow)
    return atomic_write(path, lambda f: save_image(picture, f, format="png"))


@torch.no_grad()
def sample(generator: nn.Module, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """G(noise) in eval mode (BatchNorm running stats), restoring the caller's mode; labels for a conditional G."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(noise) if labels is None else generator(noise, labels.to(noise.device))
    finally:
        generator.train(was_training)


def sample_in_batches(
    generator: nn.Module, num_samples: int, z_dim: int, batch_size: int, device: torch.device, seed: int,
    labels: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Yield uint8 sample batches on the CPU; memory stays at one batch however large num_samples is. labels: one
    class per sample for a conditional G (None: its own proportional labels)."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        noise = torch.randn(n, z_dim, generator=rng).to(device)
        batch_labels = None if labels is None else labels[start : start + n]
        yield to_uint8(sample(generator, noise, batch_labels)).cpu()
