"""A run folder has one owner: the process training in it holds an exclusive lock on <run>/.lock for its whole life,
with its PID written inside. fcntl.flock: the OS releases it when the process ends, also after kill -9, so a stale
lock never blocks a resume. Taken before Hydra writes its records into the folder (src/run/launch_checks.py)."""

import fcntl
import os
from pathlib import Path

from src.core.errors import UserError
from src.core.layout import RunFolder

_held: dict[Path, int] = {}  # folder -> the open lock file, kept for the process's life
RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")  # DDP's other processes share rank 0's folder


def is_first_process() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def own_run_folder(folder: Path) -> None:
    """Lock `folder` for this process, or say in one line which process has it."""
    folder = Path(folder).resolve()
    if folder in _held or not is_first_process():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(RunFolder(folder).lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise UserError(f"{folder} is in use: process {other} is training in it; wait until it ends (then resume= "
                        "continues it), or give this command its own folder (e.g. name=<another name>)") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[folder] = fd


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
        return candidate
    raise UserError(f"{folder} and 998 more like it exist: give the run its own folder with hydra.run.dir=<folder>")
