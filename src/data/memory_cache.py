"""A dataset decoded once into uint8 tensors, cached on disk next to its raw files and rebuilt when they change.

The cache records what it was built from: name, size, modification time and md5 of every raw file. Size and time
are compared at each load (free); when they differ, the md5s decide (a copied or touched file with the same bytes
keeps the cache). A rebuild runs under the dataset's lock (src/data/lock.py), so processes starting together
decode once, and starts with the dataset's own check of its raw files (known checksums, src/data/checksums.py).
"""

import logging
import pickle
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from src.core.atomic_io import WriteFailed, atomic_save
from src.data.checksums import md5_of

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the cached layout changes


def fingerprint(folder: Path) -> list[list]:
    """Name, size and mtime of every file in `folder`: a changed or replaced raw file invalidates the cache."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _read(cache: Path) -> dict[str, Any] | None:
    try:
        saved = torch.load(cache, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None
    return saved if isinstance(saved, dict) and saved.get("format") == FORMAT else None


def _same_bytes(saved: dict[str, Any], raw_dir: Path, source: list[list]) -> bool:
    """The raw files changed on disk (size or time) but hold the bytes the cache was built from."""
    return [name for name, *_ in source] == list(saved["md5"]) and \
        all(md5_of(raw_dir / name) == saved["md5"][name] for name, *_ in source)


def _write(cache: Path, source: list[list], md5: dict[str, str], images: torch.Tensor, labels: torch.Tensor) -> None:
    try:
        atomic_save({"format": FORMAT, "source": source, "md5": md5, "images": images, "labels": labels}, cache)
    except WriteFailed as err:  # a read-only data dir still trains, it just decodes again next time
        log.warning(f"[data] {err.what}: continuing without the decoded-data cache")


def load_or_build(
    cache: Path, raw_dir: Path, build: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    lock: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[tuple[torch.Tensor, torch.Tensor], bool]:
    """((images uint8 N×C×H×W, labels int64), whether the cache was used). `build` decodes (and checks) the raw
    files; `lock` is held while the cache is checked again and built."""
    source = fingerprint(raw_dir)
    saved = _read(cache) if cache.is_file() else None
    if saved is not None and saved["source"] == source:
        return (saved["images"], saved["labels"]), True
    with lock():
        source = fingerprint(raw_dir)
        saved = _read(cache) if cache.is_file() else None  # another process may have built it while we waited
        if saved is not None and (saved["source"] == source or _same_bytes(saved, raw_dir, source)):
            if saved["source"] != source:
                _write(cache, source, saved["md5"], saved["images"], saved["labels"])
            return (saved["images"], saved["labels"]), True
        images, labels = build()
        _write(cache, source, {name: md5_of(raw_dir / name) for name, *_ in source}, images, labels)
    return (images, labels), False
