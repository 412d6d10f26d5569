"""A run folder has one owner: a second command for a folder in which a process is training is refused in one line,
before it writes anything there; the folder is free again once that process has ended (also by kill -9)."""

import signal
import time
from pathlib import Path

import pytest

from src.data.synthetic import write_mnist
from tests.conftest import run_cli
from tests.test_signals import finish, start

pytestmark = pytest.mark.slow  # processes of its own


def test_a_folder_in_use_is_refused_and_free_once_its_owner_ended(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data")
    run = tmp_path / "run"
    common = ["model=mlp_gan", "model.generator.width=8", f"paths.data_dir={tmp_path / 'data'}", "data.batch_size=8",
              "data.num_workers=0", "~callbacks.progress_bar", "~logger", "sample_every_n_batches=0"]
    owner = start(*common, "max_batches=100000", "checkpoint_every_n_batches=5", f"hydra.run.dir={run}")
    try:
        refused_while_owned(owner, run, common)
    finally:  # never leave it training
        owner.send_signal(signal.SIGKILL)
        owner.communicate(timeout=60)
    # a dead owner's lock is gone with it: resume= takes the folder (past the budget: it writes the final weights the
    # killed run never wrote, and trains nothing)
    resumed = run_cli("src.train", f"resume={run}", "max_batches=1")
    assert resumed.returncode == 0 and "writing its final files" in resumed.stdout, resumed.stderr[-3000:]
    assert (run / "generator.pt").is_file()


def refused_while_owned(owner, run: Path, common: list[str]) -> None:
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "last.ckpt").is_file():  # training: it has saved once
        assert owner.poll() is None and time.monotonic() < deadline, finish(owner)[1][-3000:]
        time.sleep(0.2)
    records = {p: p.read_bytes() for p in (run / ".hydra").iterdir()}

    in_use = (f"Error: {run} is in use: process {owner.pid} is training in it; wait until it ends (then resume= "
              "continues it), or give this command its own folder (e.g. name=<another name>)")
    for second in ([*common, "max_batches=3", f"hydra.run.dir={run}"], [f"resume={run}", "max_batches=100001"]):
        refused = run_cli("src.train", *second)
        errors = [line for line in refused.stderr.splitlines() if line.startswith("Error: ")]
        assert refused.returncode == 2 and errors == [in_use], refused.stderr[-3000:]
    # a sweep job is a run: refused the folder in use (its job fails), while the owner trains on untouched
    sweep = run_cli("src.train", "-m", *common, "max_batches=3", "seed=9", f"hydra.sweep.dir={run.parent}",
                    f"hydra.sweep.subdir={run.name}")
    assert in_use in sweep.stderr.splitlines(), sweep.stderr[-3000:]
    assert not (run / "job_result.json").exists() or "FAILED" in (run / "job_result.json").read_text()
    assert {p: p.read_bytes() for p in (run / ".hydra").iterdir()} == records  # nothing written there


def test_new_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    from src.core.run_lock import reserve_new_folder

    folder = tmp_path / "outputs" / "2026-12-05" / "10-30-12_baseline"
    assert [reserve_new_folder(folder) for _ in range(3)] == [
        folder, folder.with_name("10-30-12_baseline-2"), folder.with_name("10-30-12_baseline-3")]
    assert all(p.is_dir() for p in folder.parent.iterdir())


def test_a_new_run_in_the_folder_of_a_finished_one_is_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data")
    run = tmp_path / "run"
    common = ["model=mlp_gan", "model.generator.width=8", f"paths.data_dir={tmp_path / 'data'}", "data.batch_size=8",
              "data.num_workers=0", "~callbacks.progress_bar", "~logger", "max_batches=2", f"hydra.run.dir={run}"]
    assert run_cli("src.train", *common).returncode == 0
    def files() -> dict[Path, bytes]:  # but the lock file, which names the process that last held the folder
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    again = run_cli("src.train", *common, "loss=lsgan")
    errors = [line for line in again.stderr.splitlines() if line.startswith("Error: ")]
    assert again.returncode == 2 and errors == [
        f"Error: hydra.run.dir={run} holds a run already (1 checkpoint(s) in {run / 'checkpoints'}): continue it with "
        f"python -m src.train resume={run}, or start this run in another folder (drop hydra.run.dir= for a new one)"
    ], again.stderr[-3000:]
    assert files() == before  # its weights and records kept


def finished_run(tmp_path: Path) -> tuple[Path, list[str]]:
    write_mnist(tmp_path / "data")
    common = ["model=mlp_gan", "model.generator.width=8", f"paths.data_dir={tmp_path / 'data'}", "data.batch_size=8",
              "data.num_workers=0", "~callbacks.progress_bar", "~logger", "max_batches=2"]
    run = tmp_path / "run"
    done = run_cli("src.train", *common, f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr[-3000:]
    return run, common


def files_in(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def one_error(result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_a_lock_that_cannot_be_taken_stops_the_command_before_it_writes(tmp_path: Path) -> None:
    run, common = finished_run(tmp_path)
    (run / ".lock").unlink()
    before = files_in(run)
    (run / ".lock").mkdir()  # a lock that can't be opened: the run must not go on unguarded and replace the run
    error = one_error(run_cli("src.train", *common, f"hydra.run.dir={run}", "seed=7", "max_batches=3"))
    assert error.startswith(f"Error: {run / '.lock'} can't be taken as the run folder's lock (Is a directory)")
    assert files_in(run) == before

    (run / ".lock").rmdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (run / ".lock").symlink_to(victim)  # never followed: the target is not truncated to hold a PID
    error = one_error(run_cli("src.train", f"resume={run}", "max_batches=3"))
    assert "(a symbolic link)" in error and victim.read_text() == "keep me\n"
    assert files_in(run) == before


def test_a_refused_command_removes_only_what_it_wrote(tmp_path: Path) -> None:
    mine = tmp_path / "mine"  # a folder of the user's, holding files with the names of a run's records
    mine.mkdir()
    (mine / "train.log").write_text("notes\n")
    (mine / "config.yaml").write_text("a: 1\n")
    one_error(run_cli("src.train", f"hydra.run.dir={mine}", "data.batch_size=0"))
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "train.log"]
    assert (mine / "config.yaml").read_text() == "a: 1\n" and (mine / "train.log").read_text().startswith("notes\n")

    new = tmp_path / "new" / "run"  # a folder the command made itself is removed whole
    one_error(run_cli("src.train", f"hydra.run.dir={new}", "data.batch_size=0"))
    assert not new.exists()
    (tmp_path / "no_images").mkdir()  # refused by the data module, after the loggers made their folders
    one_error(run_cli("src.train", f"hydra.run.dir={new}", "data=folder", f"data.path={tmp_path / 'no_images'}"))
    assert not new.exists()


def test_resume_of_a_folder_that_is_not_a_run_writes_nothing_there(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.log").write_text("notes\n")
    (other / ".lock").write_text("")
    error = one_error(run_cli("src.train", f"resume={other}"))
    assert error.startswith(f"Error: resume={other} holds no checkpoint to continue from (no checkpoints/ folder")
    assert sorted(p.name for p in other.iterdir()) == [".lock", "train.log"]
    assert (other / "train.log").read_text() == "notes\n"


def test_a_sweep_job_is_refused_the_folder_of_a_finished_run(tmp_path: Path) -> None:
    run, common = finished_run(tmp_path)
    before = {p: b for p, b in files_in(run).items() if p.name not in (".lock", "train.log")}
    sweep = run_cli("src.train", "-m", *common, "seed=9", "max_batches=3", f"hydra.sweep.dir={run.parent}",
                    f"hydra.sweep.subdir={run.name}")
    assert (f"Error: this sweep job's folder {run} holds a run already (1 checkpoint(s) in {run / 'checkpoints'})"
            in sweep.stderr), sweep.stderr[-3000:]
    after = files_in(run)
    assert all(after.get(p) == b for p, b in before.items())  # checkpoints, weights and Hydra's records kept
    assert "seed: 42" in (run / "config.yaml").read_text()
