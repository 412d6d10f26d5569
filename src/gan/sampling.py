"""Turning latents into pictures: the latents of a seed (optionally truncated), paths between them, uint8
conversion, grids, batched sampling.

Sample i of a seed has the same latent whatever the batch size: each sample draws its own row (its Gaussian z, then
the uniforms a truncation would use) from one random stream, so batching decides only how many rows go through G at
once. The images then agree up to the floating-point rounding of G's kernels at different batch sizes."""

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

from src.core.atomic_io import atomic_write


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> [0, 255] uint8, rounding to nearest."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A (C, H, W) float grid in [0, 1] for TensorBoard or PNG; one channel for one-channel images (make_grid
    repeats it three times)."""
    picture = make_grid(images.float().clamp(-1, 1), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    return picture[:1] if images.size(1) == 1 else picture


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """A PNG grid, written atomically (src/core/atomic_io.py)."""
    return save_picture(grid(images, nrow), path)


def png(picture: torch.Tensor | np.ndarray) -> bytes:
    """A `grid` (or its `pixels`) encoded as PNG, once for its file and the loggers. zlib level 1, not PIL's default
    6: training writes a grid every sample_every_n_batches, and level 1 encodes an MNIST grid in half the time for a
    10% larger file."""
    buffer = io.BytesIO()
    Image.fromarray(pixels(picture) if isinstance(picture, torch.Tensor) else picture).save(
        buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def save_picture(picture: torch.Tensor, path: Path, encoded: bytes | None = None) -> Path:
    """A `grid` as a PNG (`encoded`: its `png` bytes, when already made), written atomically."""
    data = png(picture) if encoded is None else encoded
    return atomic_write(path, lambda f: f.write(data))


def pixels(picture: torch.Tensor) -> np.ndarray:
    """A (C, H, W) float picture in [0, 1] (a `grid`) as H x W x C uint8 (H x W for one channel), what PIL and the
    loggers' image calls take."""
    array = picture.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return array[..., 0] if array.shape[2] == 1 else array


def save_gif(frames: list[Image.Image], path: Path, ms_per_frame: int) -> Path:
    """An animated GIF that loops, written atomically."""
    return atomic_write(path, lambda f: frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                                                       duration=ms_per_frame, loop=0))


@torch.no_grad()
def sample(generator: nn.Module, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """G(noise) in eval mode (BatchNorm running stats), restoring the caller's mode; labels for a conditional G."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(noise) if labels is None else generator(noise, labels.to(noise.device))
    finally:
        generator.train(was_training)


def truncate(noise: torch.Tensor, uniforms: torch.Tensor, psi: float) -> torch.Tensor:
    """The truncation trick (Brock et al. 2019): every component with |z| > psi is drawn again from N(0, 1) until it
    lands in [-psi, psi]; the others are kept as they are. The redraw is done in one step, by the inverse CDF of the
    normal restricted to [-psi, psi] at `uniforms` (same shape, in [0, 1)), which is the distribution the repeated
    redraw ends in and costs the same however small psi is."""
    low = torch.special.ndtr(torch.tensor(-psi, dtype=torch.float64))
    redrawn = torch.special.ndtri(low + uniforms.double() * (1 - 2 * low)).clamp(-psi, psi).to(noise.dtype)
    return torch.where(noise.abs() > psi, redrawn, noise)


def latent_batches(num_samples: int, z_dim: int, batch_size: int, seed: int,
                   truncation: float | None = None) -> Iterator[torch.Tensor]:
    """The first num_samples latents of `seed` on the CPU, batch_size at a time; truncation: psi of `truncate`."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    for start in range(0, num_samples, batch_size):
        rows = [(torch.randn(1, z_dim, generator=rng), torch.rand(1, z_dim, generator=rng))
                for _ in range(min(batch_size, num_samples - start))]
        noise = torch.cat([z for z, _ in rows])
        yield noise if truncation is None else truncate(noise, torch.cat([u for _, u in rows]), truncation)


def latents(num_samples: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """The first num_samples latents of `seed`, as sample_in_batches draws them."""
    return torch.cat(list(latent_batches(num_samples, z_dim, max(num_samples, 1), seed, truncation)))


def slerp(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; for GAN latents White 2016) from each row of `start` (N x D) to the
    same row of `end`: N x steps x D, both ends included exactly. Rows that are (anti)parallel, where the arc is
    undefined, fall back to linear interpolation."""
    t = torch.linspace(0, 1, steps, dtype=torch.float64).view(1, -1, 1)
    a, b = start.double().unsqueeze(1), end.double().unsqueeze(1)
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(1e-30)
    omega = cos.clamp(-1, 1).arccos()
    sin = omega.sin()
    arc = ((1 - t) * omega).sin() / sin.clamp_min(1e-12) * a + (t * omega).sin() / sin.clamp_min(1e-12) * b
    path = torch.where(sin > 1e-6, arc, (1 - t) * a + t * b).to(start.dtype)
    path[:, 0], path[:, -1] = start, end  # exact, whatever the rounding of the arc
    return path


def images_in_batches(generator: nn.Module, noise: Iterable[torch.Tensor], device: torch.device,
                      labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """Yield G's uint8 images on the CPU for each batch of latents; labels: one class per sample for a conditional G
    (None: its own proportional labels)."""
    start = 0
    for batch in noise:
        batch_labels = None if labels is None else labels[start : start + len(batch)]
        yield to_uint8(sample(generator, batch.to(device), batch_labels)).cpu()
        start += len(batch)


def sample_in_batches(
    generator: nn.Module, num_samples: int, z_dim: int, batch_size: int, device: torch.device, seed: int,
    labels: torch.Tensor | None = None, truncation: float | None = None,
) -> Iterator[torch.Tensor]:
    """Yield uint8 sample batches on the CPU; memory stays at one batch however large num_samples is. labels: one
    class per sample for a conditional G (None: its own proportional labels, per batch)."""
    noise = latent_batches(num_samples, z_dim, batch_size, seed, truncation)
    yield from images_in_batches(generator, noise, device, labels)
