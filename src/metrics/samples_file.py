"""Images made anywhere, as `src.evaluate samples=<file.npz>` reads them: an `images` array (uint8; N x C x H x W as
src.generate writes it, or N x H x W x C, or grayscale N x H x W) and optionally `labels`, one class per image."""

import zipfile
from pathlib import Path

import numpy as np
import torch

from src.core.errors import UserError


def read_samples(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) of an .npz as src.generate writes it."""
    if not path.is_file():
        raise UserError(f"samples={path} does not exist: pass an .npz with an `images` array (uint8, N x C x H x W, "
                        "as src.generate writes)")
    try:
        with np.load(path) as archive:
            if "images" not in archive.files:
                raise UserError(f"samples={path} has no `images` array (it holds {', '.join(archive.files)}): save "
                                "it with np.savez(path, images=<uint8 N x C x H x W>)")
            return archive["images"], archive["labels"] if "labels" in archive.files else None
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as err:  # not an npz, object arrays, ...
        raise UserError(f"samples={path} is not a readable .npz ({type(err).__name__}): save images with "
                        "np.savez(path, images=<uint8 N x C x H x W>)") from err


def channels_first(images: np.ndarray, path: Path) -> np.ndarray:
    """N x C x H x W uint8 of square images; N x H x W x C and N x H x W (grayscale) are transposed. The layout is
    told apart by which axes are equal (square images) and which has 1, 3 or 4 (RGBA) entries; 1x1, 3x3 and 4x4
    images, which fit both, are read as N x C x H x W."""
    if images.dtype != np.uint8:
        raise UserError(f"samples={path}: images are {images.dtype}, not uint8 in 0..255: convert them first, e.g. "
                        "((x + 1) * 127.5).round().clip(0, 255).astype(np.uint8) for images in [-1, 1]")
    if images.ndim == 3:
        images = images[:, None]
    shape = "x".join(map(str, images.shape))
    if images.ndim != 4 or len(images) == 0:
        raise UserError(f"samples={path}: images of shape {shape} are not a batch of images: save N x C x H x W")
    _, a, h, w = images.shape
    if not (a in (1, 3, 4) and h == w):
        if w in (1, 3, 4) and a == h:
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        raise UserError(f"samples={path}: images of shape {shape} are neither N x C x H x W nor N x H x W x C of "
                        "square images with 1, 3 or 4 channels")
    return images


def sample_labels(labels: np.ndarray | None, count: int, path: Path) -> torch.Tensor | None:
    if labels is None:
        return None
    if labels.ndim != 1 or len(labels) < count or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"samples={path}: `labels` must be one integer class per image (got {labels.dtype} of shape "
                        f"{labels.shape} for {count} images); leave it out for unconditional samples")
    return torch.from_numpy(labels[:count].astype(np.int64))
