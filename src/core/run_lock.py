"""A run folder has one owner: the process training in it holds an exclusive lock on <run>/.lock for its whole life
(a sweep job: for the job's life), with its PID written inside. fcntl.flock: the OS releases it when the process
ends, also after kill -9, so a stale lock never blocks a resume. Taken before Hydra writes its records into the
folder (src/run/launch_checks.py).

The lock fails closed: a lock file that can't be opened, is not a regular file (a symlink is never followed) or
can't be locked stops the command. What this process found in the folder when it took it is remembered, so a
refused command removes only what it wrote there (src/run/cli.py drop_empty_run_folder)."""

import errno
import fcntl
import os
import stat
from pathlib import Path

from src.core.errors import UserError
from src.core.layout import RunFolder

_held: dict[Path, int] = {}  # folder -> the open lock file, kept while this process trains in it
_found: dict[Path, frozenset[str]] = {}  # folder -> its entries when this process took it
_made: set[Path] = set()  # the folders this process created
RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")  # DDP's other processes share rank 0's folder


def is_first_process() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def holds(folder: Path) -> bool:
    """Whether this process owns `folder` (a DDP process other than the first never takes the lock: rank 0 has it)."""
    return Path(folder).resolve() in _held or not is_first_process()


def own_run_folder(folder: Path) -> None:
    """Lock `folder` for this process, or say in one line which process has it or why it can't be locked."""
    folder = Path(folder).resolve()
    if folder in _held or not is_first_process():
        return
    if folder not in _found:
        if not folder.is_dir():
            _made.add(folder)
        _found[folder] = frozenset(p.name for p in folder.iterdir()) if folder.is_dir() else frozenset()
    lock = RunFolder(folder).lock
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise _unlockable(lock, err) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _unlockable(lock, OSError(errno.EINVAL, "not a regular file"))
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise UserError(f"{folder} is in use: process {other} is training in it; wait until it ends (then resume= "
                        "continues it), or give this command its own folder (e.g. name=<another name>)") from None
    except OSError as err:
        os.close(fd)
        raise _unlockable(lock, err) from None
    except UserError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[folder] = fd


def _unlockable(lock: Path, err: OSError) -> UserError:
    why = "a symbolic link" if err.errno == errno.ELOOP else err.strerror or str(err)
    return UserError(f"{lock} can't be taken as the run folder's lock ({why}): nothing was written; remove or "
                     "repair it (it must be a plain file this user can write), or give this command another folder")


def release_run_folder(folder: Path) -> None:
    """End this process's ownership of `folder` (a sweep job that ended: the next job may run in this process)."""
    fd = _held.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)


def found_in(folder: Path) -> frozenset[str] | None:
    """The entries `folder` held when this process took it (none when this process made it); None when this process
    never took it."""
    return _found.get(Path(folder).resolve())


def made_here(folder: Path) -> bool:
    return Path(folder).resolve() in _made


def reserve_new_folder(folder: Path) -> Path:
    """A new run's default folder (named by the second it started), created by this process alone: a second run
    started in the same second gets <name>-2, -3, ... (os.mkdir succeeds for one process only)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = folder if n == 1 else folder.with_name(f"{folder.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        _made.add(candidate.resolve())
        _found[candidate.resolve()] = frozenset()
        return candidate
    raise UserError(f"{folder} and 998 more like it exist: give the run its own folder with hydra.run.dir=<folder>")
