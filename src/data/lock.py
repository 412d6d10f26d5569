"""One process at a time prepares a shared file (dataset download/rebuild/unpack, decoded cache, real statistics):
an exclusive lock on a hidden lock file beside it, held while the work is done; the others wait, then reuse it.

Sweep jobs, DDP ranks and two terminals can start on one data folder at once. fcntl.flock locks belong to the
open file, so a killed holder releases its lock with its last file descriptor, and it works on local disks and on
NFSv4. Lock files are left in place: deleting one while another process waits on it would let a third lock a new
file of the same name at the same time.
"""

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold the lock on lock_file; says once that it waits when another process holds it (`what` it prepares)."""
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a read-only folder: nothing can be written there, so there is nothing to guard
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(f"waiting for another process to finish preparing {what} ({lock_file} is locked)")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
