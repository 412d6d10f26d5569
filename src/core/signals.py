"""Stopping on SIGTERM, SIGINT (Ctrl-C) and SIGUSR1 at the end of the current batch, with a checkpoint and a
non-zero exit status (128 + the signal number: 143, 130, 138), instead of Lightning's silent exit 0.

- StopSignals installs the handlers while training runs. A handler only records the signal; BatchCheckpoint
  (src/callbacks/checkpoint.py) reads it at each batch end, after the batch's optimizer steps, agrees on it with
  the other ranks, saves last.ckpt, stops the trainer and records the stop here; a second signal exits at once
  (the atomic writer leaves the old or the new file, never a mix).
- run_cli (src/run/cli.py) finishes a recorded stop after the normal end of training (weights, grids, GIF):
  one line, a SLURM requeue when SLURM's time-limit warning (SIGUSR1) caused it, and the exit status.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from src.core.logs import report_error

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# The signal `#SBATCH --signal=USR1@90` sends before the time limit (conf/hydra/launcher/slurm.yaml): a stop by it
# inside a SLURM job requeues the job, which continues from the checkpoint (src/run/resume.py).
REQUEUE_SIGNAL = signal.SIGUSR1


def exit_status(signum: int) -> int:
    return 128 + signum


INTERRUPTED = ("stopped by SIGINT (Ctrl-C) before it finished: the files it wrote are whole (each is written to a "
               "temp file and renamed); run the command again for what is missing")


def quiet_ctrl_c_in_clis() -> None:
    """Ctrl-C while a CLI (python -m src.<cli>) starts, e.g. inside `import torch`, is INTERRUPTED's one line instead
    of a traceback; the process still ends by SIGINT, as Python's own handling does (130 in a shell). Called when the
    package is imported, which `python -m src.<cli>` does first: other programs importing src keep their own hook."""
    launched = sys.orig_argv[1:3]
    if len(launched) < 2 or launched[0] != "-m" or not launched[1].startswith("src."):
        return
    previous = sys.excepthook

    def hook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print(f"\n{INTERRUPTED}", file=sys.stderr, flush=True)
        else:
            previous(kind, value, traceback)

    sys.excepthook = hook


class StopSignals:
    """Handlers that record the first stop signal in `received` (0: none) and exit at once on a second one."""

    def __init__(self) -> None:
        self.received = 0
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        self.received = 0
        take_stop()  # a stop of an earlier training in this process was reported already, or no longer applies
        if threading.current_thread() is not threading.main_thread():  # Python runs handlers in the main thread
            return
        self._previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._handle)

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        global _exiting
        if self.received:
            os.write(2, f"\n{signal.Signals(signum).name} again: stopping at once\n".encode())
            _exiting = exit_status(signum)
            raise SystemExit(_exiting)
        self.received = signum


_exiting = 0  # the exit status a second stop signal asked for (0: none)


def received_before_training() -> int:
    """A stop signal last_files_first recorded before training took over the handlers (0: none)."""
    return _outer.received if _outer is not None else 0


def exiting_at_once() -> int:
    """The status to exit with when a second stop signal is under way: code that catches what the signal's
    SystemExit turned into (torch.save reports it as a RuntimeError) exits with it instead."""
    return _exiting


@dataclass(frozen=True)
class Stop:
    signum: int
    message: str  # the line a user sees
    report: bool  # False on ranks other than 0: they exit silently with the same status


_recorded: Stop | None = None


def record_stop(stop: Stop) -> None:
    global _recorded
    _recorded = stop


def take_stop() -> Stop | None:
    """The stop training recorded in this process, once."""
    global _recorded
    stop, _recorded = _recorded, None
    return stop


def slurm_job_id() -> str | None:
    """The id `scontrol requeue` takes (an array task is <array job>_<task>); None outside a SLURM job."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")


def requeue_slurm_job(job_id: str) -> str:
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"could not requeue SLURM job {job_id} ({err}): resubmit it"
    if result.returncode != 0:
        return f"could not requeue SLURM job {job_id} ({result.stderr.strip() or result.returncode}): resubmit it"
    return f"requeued SLURM job {job_id}: it continues from this checkpoint"


def finish_stop(stop: Stop) -> NoReturn:
    """Print the line, requeue a SLURM job stopped by its time-limit warning, exit with 128 + the signal number."""
    if stop.report:
        report_error(stop.message)
        job_id = slurm_job_id()
        if stop.signum == REQUEUE_SIGNAL and job_id:
            report_error(requeue_slurm_job(job_id))
    sys.exit(exit_status(stop.signum))


def stop_pending() -> bool:
    """Whether training in this process was stopped by a signal (its line comes once training has ended)."""
    return _recorded is not None


_outer: StopSignals | None = None  # the handlers of last_files_first, while it runs


@contextmanager
def last_files_first() -> Iterator[None]:
    """Around trainer.fit: Lightning puts the process's own handlers back before on_fit_end, where the weights,
    grids and GIF are written, so a stop signal there would kill the run half-way, silently. Under this block such a
    signal waits for the end of fit instead (a second one still stops at once), and one line says so. One that
    arrives before training (data preparation: a download, a decode) is handed to training, which stops before its
    first batch (received_before_training); the preparation's temp files are cleaned up meanwhile."""
    global _outer
    outer = _outer = StopSignals()
    outer.install()
    try:
        yield
    finally:
        outer.restore()
        _outer = None
        if outer.received and not stop_pending():
            logging.getLogger(__name__).info(f"{signal.Signals(outer.received).name} arrived as the run ended: its "
                                             "last files were finished first")
