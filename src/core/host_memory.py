"""Keep the CPU memory one batch frees for the next batch (glibc's malloc only).

glibc returns a freed block above its mmap threshold to the OS at once, and trims the top of its heap once more than
its trim threshold lies free there. Both thresholds adapt to the largest block the process happened to free early
on, so in one process a training step's tensors come from reused memory and in another every batch hands megabytes
back and page-faults them in again (dcgan28 on a CPU: ~2,800 page faults and 5-20% of the time per batch, see
benchmarks/train.md). Fixed thresholds make the reuse the rule; a block above MMAP_THRESHOLD (a dataset read in one
piece) still goes back to the OS when freed."""

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Fix glibc's malloc thresholds for the rest of the process; False where they were left alone (not glibc, or
    the user set malloc tunables of their own in GLIBC_TUNABLES, which win)."""
    if platform.libc_ver()[0] != "glibc" or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    trim_set = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    mmap_set = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(trim_set and mmap_set)
