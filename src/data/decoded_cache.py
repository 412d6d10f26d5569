"""An image folder decoded once into its store (data.store_dir, never inside the user's images).

Two files per image size, mode and background: `<stem>.<key>.npy`, every training image as uint8 N×C×H×W, and
`<stem>.json`, what it was built from (the key: each image file's path, size and mtime, and the decode settings)
and the labels. A later run stats the files, compares the key and loads the .npy: into memory when it fits, else
memory-mapped, so a set larger than RAM still trains, at disk speed.

Decoding runs in a process pool with a progress bar. The .npy is filled in a temp file whose space is reserved
first (a full disk fails at once, not in the middle), then renamed into place, then the .json: a stop during
decoding leaves no cache that could be read as complete. A full disk or a read-only store gives one line and the
caller reads per item instead.
"""

import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from src.core.atomic_io import WriteFailed, atomic_write, describe_failure, fsync_dir, human_size

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the cached layout or the decoding changes
CHUNK = 64  # images per task of the process pool


@dataclass
class Decoded:
    images: np.ndarray  # uint8 N×C×H×W, in memory or memory-mapped
    labels: np.ndarray  # int64 N
    path: Path  # the .npy file
    mapped: bool  # memory-mapped: larger than half the memory available
    built: bool  # decoded by this call (False: loaded)


class NoCache(Exception):
    """The cache can't be written here (full disk, read-only store); the message says why and what to do."""


def cache_key(root: Path, files: Sequence[Path], settings: dict) -> str:
    """What a cache was built from: every image file's path (relative to the folder), size and mtime, and the
    settings that change its pixels; a stat of each file, nothing decoded."""
    listing = []
    for path in files:
        stat = path.stat()
        listing.append([str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"format": FORMAT, "settings": settings, "files": listing}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def available_memory() -> int:
    """Bytes of memory available without swapping (Linux MemAvailable; else the free pages)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo") as f:
            line = next(line for line in f if line.startswith("MemAvailable:"))
        return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits_in_memory(size: int) -> bool:
    """Load a cache of `size` bytes into memory (True) or memory-map it: half of what is available leaves room for
    the model, the loader and other processes."""
    return size <= available_memory() // 2


def worker_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; the pool is shut down with it


def _decode_chunk(decode: Callable[[Path], np.ndarray], start: int,
                  paths: list[Path]) -> tuple[int, list[np.ndarray | None], list[tuple[int, str]]]:
    images: list[np.ndarray | None] = []
    failed = []
    for offset, path in enumerate(paths):
        try:
            images.append(decode(path))
        except Exception as err:  # PIL raises many types for broken files (see src/data/folder.py probe)
            images.append(None)
            failed.append((start + offset, f"{path}: {err}"))
    return start, images, failed


def _chunks(decode: Callable[[Path], np.ndarray], paths: Sequence[Path], workers: int) -> Iterator[tuple]:
    """The decoded chunks of `paths`, as they are done: in a process pool of `workers`, or in this process."""
    tasks = [(start, list(paths[start : start + CHUNK])) for start in range(0, len(paths), CHUNK)]
    if workers <= 1 or len(tasks) == 1:
        yield from (_decode_chunk(decode, start, chunk) for start, chunk in tasks)
        return
    # fork: the children need only PIL and numpy, already imported; spawn would import the whole app again
    pool = cf.ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("fork"),
                                  initializer=_ignore_interrupts)
    try:
        futures = [pool.submit(_decode_chunk, decode, start, chunk) for start, chunk in tasks]
        yield from (future.result() for future in cf.as_completed(futures))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def decode_all(decode: Callable[[Path], np.ndarray], paths: Sequence[Path], out: np.ndarray, what: str,
               workers: int | None = None) -> dict[int, str]:
    """out[i] = decode(paths[i]) (a picklable callable giving uint8 C×H×W), with a progress bar (images/s, ETA);
    returns {index: error} of the files that failed, whose rows are left as they were."""
    failed: dict[int, str] = {}
    with tqdm(total=len(paths), desc=f"[data] decoding {what}", unit="img", dynamic_ncols=True, mininterval=0.5,
              leave=False) as bar:
        for start, images, errors in _chunks(decode, paths, workers or worker_count()):
            for offset, image in enumerate(images):
                if image is not None:
                    out[start + offset] = image
            failed.update(errors)
            bar.update(len(images))
    return failed


class DecodedCache:
    """The decoded images of one folder at one image size, mode and background, in `store`."""

    def __init__(self, store: Path, stem: str, key: str) -> None:
        self.store, self.stem, self.key = store, stem, key
        self.meta = store / f"{stem}.json"
        self.npy = store / f"{stem}.{key[:16]}.npy"

    def load(self) -> Decoded | None:
        """The cache when it was built from what `key` describes, else None."""
        try:
            meta = json.loads(self.meta.read_text())
            if meta.get("key") != self.key:
                return None
            mapped = not fits_in_memory(self.npy.stat().st_size)
            # "c": copy-on-write pages, a writable array (torch warns on read-only ones) that never writes the file
            images = np.load(self.npy, mmap_mode="c" if mapped else None)
        except (OSError, ValueError, AttributeError):
            return None
        labels = np.asarray(meta.get("labels", []), dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(labels):
            return None
        return Decoded(images, labels, self.npy, mapped, built=False)

    def build(self, shape: tuple[int, ...], fill: Callable[[np.ndarray], np.ndarray]) -> Decoded:
        """`fill(out)` decodes into `out` (uint8, `shape`, backed by a temp file) and returns the labels; then the
        files are renamed into place. Raises NoCache when the store can't hold them."""
        size = int(np.prod(shape))
        try:
            self.store.mkdir(parents=True, exist_ok=True)
            self._remove_leftovers()
            self._check_space(size)
        except OSError as err:
            raise NoCache(self._cannot(err, size)) from err
        tmp = self.store / f".{self.stem}.{os.getpid()}.tmp.npy"
        try:
            labels = self._fill_file(tmp, shape, fill)
            os.replace(tmp, self.npy)
            fsync_dir(self.store)
            record = {"key": self.key, "shape": list(shape), "labels": labels.tolist()}
            atomic_write(self.meta, lambda f: f.write(json.dumps(record).encode()))
        except OSError as err:
            raise NoCache(self._cannot(err, size)) from err
        except WriteFailed as err:
            raise NoCache(f"{err.what}: {err.remedy}") from err
        finally:
            tmp.unlink(missing_ok=True)
        self._remove_others()
        loaded = self.load()
        if loaded is None:
            raise NoCache(f"the decoded cache {self.npy} could not be read back")
        loaded.built = True
        return loaded

    def _fill_file(self, tmp: Path, shape: tuple[int, ...], fill: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        with open(tmp, "r+b") as f:  # reserve the blocks: a full disk fails here, not as SIGBUS mid-way
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        labels = fill(out)
        out.flush()
        del out
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        return labels

    def _check_space(self, size: int) -> None:
        free = shutil.disk_usage(self.store).free
        if free < size + (64 << 20):
            raise NoCache(f"{human_size(free)} free in {self.store}, the decoded images need {human_size(size)}: "
                          f"free space there (or point paths.data_dir / data.store_dir elsewhere)")

    def _cannot(self, err: OSError, size: int) -> str:
        reason, remedy = describe_failure(self.npy, err, size)
        return f"can't write the decoded images into {self.store} ({reason}): {remedy}"

    def _remove_leftovers(self) -> None:
        """Temp files of a build that was killed (builds run one at a time, under the caller's lock)."""
        for stale in self.store.glob(f".{self.stem}.*.tmp*"):
            stale.unlink(missing_ok=True)

    def _remove_others(self) -> None:
        """Caches of earlier versions of the folder at these settings: only the current one is ever read."""
        for old in self.store.glob(f"{self.stem}.*.npy"):
            if old != self.npy:
                old.unlink(missing_ok=True)


def load_or_build(cache: DecodedCache, shape: Callable[[], tuple[int, ...]], fill: Callable[[np.ndarray], np.ndarray],
                  lock: Callable[[], AbstractContextManager] = nullcontext) -> Decoded | None:
    """The cache, loaded, else built under `lock` (the first process builds, others wait and load what it wrote);
    None with one line when it can't be written (the caller reads per item)."""
    found = cache.load()
    if found is not None:
        return found
    with lock():
        found = cache.load()  # another process (a DDP rank) may have built it while we waited
        if found is not None:
            return found
        try:
            return cache.build(shape(), fill)
        except NoCache as err:
            log.warning(f"[data] {err}; reading the images per item instead (slower)")
            return None
