"""Faults around a run that used to end in a traceback, or left debris: damaged records of a run given to resume=,
Ctrl-C outside training, a full disk when a command starts, and the temp file of a process killed mid-write. Each
through the real command: one line, and nothing lost or left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env, run_cli
from tests.test_run_lock import files_in, finished_run, one_error

pytestmark = pytest.mark.slow  # processes of their own


@pytest.mark.parametrize(("record", "content", "why"), [
    (".hydra/overrides.yaml", "- [a\n", "(while parsing a flow sequence)"),
    (".hydra/overrides.yaml", "- 5\n", "(a list of overrides expected)"),
    ("config.yaml", "5\n", "(Invalid loaded object type: int)"),
])
def test_a_damaged_record_of_a_run_is_one_line_on_resume(tmp_path: Path, record: str, content: str, why: str) -> None:
    run, _ = finished_run(tmp_path)
    (run / record).write_text(content)
    before = kept_files(run)
    error = one_error(run_cli("src.train", f"resume={run}", "max_batches=4"))
    assert error.startswith(f"Error: {run / record}, this run's record of its ") and why in error, error
    assert kept_files(run) == before


def kept_files(run: Path) -> dict[Path, bytes]:
    """The run's files but the lock (it names the last process that held the folder) and the log (it keeps the lines
    of refused commands: what was tried)."""
    return {p: b for p, b in files_in(run).items() if p.name not in (".lock", "train.log")}


def test_ctrl_c_while_generating_is_one_line_and_exit_130(tmp_path: Path) -> None:
    run, _ = finished_run(tmp_path)
    # ~300 MB of noise and images, sampled one at a time: tens of seconds, so the signal arrives while it samples
    command = [sys.executable, "-m", "src.generate", f"ckpt_path={run}", "num_samples=300000", "batch_size=1",
               f"output_dir={tmp_path / 'samples'}"]
    # as from a terminal: a runner started in the background (nohup, CI) passes SIGINT on ignored
    generating = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=child_env(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(6)  # sampling, or still starting on a busy machine: one line either way
        generating.send_signal(signal.SIGINT)
        _, err = generating.communicate(timeout=120)
    finally:
        generating.kill()
    assert generating.returncode in (130, -signal.SIGINT) and "Traceback" not in err, err[-3000:]  # 130 in a shell
    assert err.strip().splitlines()[-1].startswith("stopped by SIGINT (Ctrl-C) before it finished: "), err[-3000:]


def test_a_leftover_temp_file_of_a_killed_writer_is_removed_when_the_run_continues(tmp_path: Path) -> None:
    run, _ = finished_run(tmp_path)
    leftover = run / "checkpoints" / ".last.ckpt.4242.0a1b2c3d.tmp"  # what kill -9 mid-write leaves
    leftover.write_bytes(b"half a checkpoint")
    mine = run / "checkpoints" / "notes.tmp"  # not a name the writer uses: kept
    mine.write_text("mine")
    resumed = run_cli("src.train", f"resume={run}", "max_batches=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not leftover.exists() and mine.read_text() == "mine"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MB file system of its own (tmpfs: root may mount one), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs to mount a small tmpfs (root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_when_a_resume_starts_is_one_line_and_writes_nothing(tmp_path: Path, small_disk: Path) -> None:
    run, _ = finished_run(tmp_path)
    subprocess.run(["cp", "-a", str(run), str(small_disk / "run")], check=True)
    run = small_disk / "run"
    (run / ".lock").unlink()
    with open(small_disk / "filler", "wb") as filler:  # every free block taken
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    before = files_in(run)
    error = one_error(run_cli("src.train", f"resume={run}", "max_batches=4"))
    assert error.startswith(f"Error: hydra.run.dir={run} is on a full disk (0 bytes free): nothing was written; ")
    # the log and lock too: refused before Hydra or the lock wrote anything
    assert files_in(run) == before and not list((run / ".hydra").glob("resume_*"))


def test_importing_src_from_a_script_keeps_its_own_exception_hook(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text("import sys\nhook = sys.excepthook\nimport src\nassert sys.excepthook is hook\nprint('ok')\n")
    for command in ([sys.executable, str(script)], [sys.executable, "-c", script.read_text()]):
        ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=child_env(), timeout=60)
        assert ran.returncode == 0 and ran.stdout == "ok\n", ran.stderr[-2000:]
