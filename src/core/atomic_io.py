"""Writes that a kill, a full disk or a crash can never leave half-done, and that say in one line why they failed.

Lightning's own TorchCheckpointIO stages local files in the system temp folder and moves them into place; when
that folder is on another filesystem the move is a copy into the final path, and nothing is fsynced. Here the
bytes go to a temp file beside the target (a name unique to the writer), are fsynced, and replace it with one
rename: readers see the old complete file or the new complete file, never a mix. A write that fails (disk full,
file size limit, read-only or broken disk) removes its temp file and raises WriteFailed, a UserError that names
the file, the error, the free space and the size needed.
"""

import contextlib
import errno
import os
import re
import resource
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from src.core.errors import UserError
from src.core.signals import exiting_at_once


class WriteFailed(UserError):
    """A file could not be written; the target was left as it was (old file or none) and no temp file remains.

    `then` is what to do once the cause is fixed; code that knows more (e.g. which checkpoint is intact) sets it."""

    def __init__(self, what: str, remedy: str, then: str = "run again") -> None:
        super().__init__(what)
        self.what, self.remedy, self.then = what, remedy, then

    def __str__(self) -> str:
        return f"{self.what}; {self.remedy}, then {self.then}"


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


def temp_path(path: Path) -> Path:
    """A hidden name beside `path` that no other process or thread writing the same file uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


TEMP_NAME = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")  # temp_path's names


def remove_leftover_temps(folder: Path) -> list[Path]:
    """The temp files a writer killed mid-write (kill -9, power loss) left in `folder` and below; call only while
    owning the folder (src/core/run_lock.py), when no other writer can be half-way through one."""
    leftovers = [p for p in folder.rglob(".*.tmp") if TEMP_NAME.fullmatch(p.name) and p.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def human_size(n: float) -> str:
    """12 MB, 1.5 GB, 640 bytes."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if unit == "bytes" or n >= 10 else f"{n:.1f} {unit}"


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() or not os.path.ismount(path):
        path = path.parent
    return path


def describe_failure(path: Path, err: OSError, written: int) -> tuple[str, str]:
    """(what went wrong, what fixes it): ('no space left on device (12 MB free on /data, the file needs ~20 MB)',
    'free space on /data') and the like."""
    reason = os.strerror(err.errno).lower() if err.errno else str(err)
    try:
        replaced = path.stat().st_size if path.is_file() else 0
    except OSError:
        replaced = 0
    # a new version is about as big as the file it replaces; else it needs at least what was written before failing
    need = f"~{human_size(replaced)}" if replaced >= written else f"at least {human_size(written)}"
    needs = f", the file needs {need}" if max(replaced, written) > 0 else ""  # nothing to go by: say nothing
    mount = mount_point(path.parent)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = f"{human_size(shutil.disk_usage(mount).free)} free on {mount}"
        except OSError:
            free = f"on {mount}"
        return f"{reason} ({free}{needs})", f"free space on {mount} (or write elsewhere)"
    if err.errno == errno.EFBIG:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            return (f"{reason} (this process may write files of at most {human_size(limit)}, the file needs {need})",
                    "raise the limit (ulimit -f unlimited)")
        return f"{reason} (the file needs {need})", f"write to a filesystem that holds larger files than {mount}"
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return reason, f"make {path.parent} writable (or write elsewhere)"
    return reason, f"check the disk behind {mount}"


class _RecordingFile:
    """The file a writer gets: it remembers the first OSError, which torch.save turns into a RuntimeError that
    says only 'unexpected pos ...'."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """`write(f)` fills a temp file beside `path`; it is fsynced and renamed over `path` only when complete."""
    path = Path(path)
    tmp = temp_path(path)
    recorder: _RecordingFile | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            recorder = _RecordingFile(f)
            write(recorder)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        written = tmp.stat().st_size if tmp.is_file() else 0
        with contextlib.suppress(OSError):  # e.g. a read-only file system: the error below is the one to report
            tmp.unlink(missing_ok=True)
        if status := exiting_at_once():  # a second stop signal during the write: the old file stays, exit now
            raise SystemExit(status) from None
        cause = recorder.error if recorder is not None and recorder.error is not None else err
        if isinstance(cause, OSError) and not isinstance(err, (KeyboardInterrupt, SystemExit)):
            reason, remedy = describe_failure(path, cause, written)
            kept = f"the previous {path.name} is unchanged" if path.is_file() else f"no {path.name} was created"
            raise WriteFailed(f"could not write {path}: {reason}; {kept} and no temp file remains", remedy) from err
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
