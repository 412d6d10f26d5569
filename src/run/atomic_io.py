"""Checkpoint writes that a kill, a full disk or a crash can never leave half-done.

Lightning's own TorchCheckpointIO stages local files in the system temp folder and moves them into place; when
that folder is on another filesystem the move is a copy into the final path, and nothing is fsynced. Here the
bytes go to a temp file beside the target, are fsynced, and replace it with one rename: readers see the old
complete file or the new complete file, never a mix.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """`write(f)` fills a temp file beside `path`; it is fsynced and renamed over `path` only when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_save(obj: object, path: str | Path) -> Path:
    """torch.save, atomically: every checkpoint, weight file and cache of the project is written this way."""
    return atomic_write(path, lambda f: torch.save(obj, f))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Trainer plugin (trainer.plugins): every checkpoint, last.ckpt included, is written by atomic_save."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(checkpoint, path)
