"""A dataset decoded once into uint8 tensors, cached on disk next to its raw files and rebuilt when they change."""

import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from src.run.atomic_io import atomic_save

FORMAT = 1  # bump when the cached layout changes


def fingerprint(folder: Path) -> list[list]:
    """Name, size and mtime of every file in `folder`: a changed or replaced raw file invalidates the cache."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _load(cache: Path, source: list[list]) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        saved = torch.load(cache, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("source") != source:
        return None
    return saved["images"], saved["labels"]


def load_or_build(
    cache: Path, raw_dir: Path, build: Callable[[], tuple[torch.Tensor, torch.Tensor]]
) -> tuple[tuple[torch.Tensor, torch.Tensor], bool]:
    """((images uint8 N×C×H×W, labels int64), whether the cache was used). Written atomically: temp file + rename."""
    source = fingerprint(raw_dir)
    if cache.is_file() and (loaded := _load(cache, source)) is not None:
        return loaded, True
    images, labels = build()
    try:
        atomic_save({"format": FORMAT, "source": source, "images": images, "labels": labels}, cache)
    except OSError as err:  # a read-only data dir still trains, it just decodes again next time
        warnings.warn(f"could not write the decoded-data cache {cache} ({err}); continuing without it", stacklevel=2)
    return (images, labels), False
