"""Preemption: SIGTERM, SIGINT and SIGUSR1 stop a real `python -m src.train` at the end of the batch they arrive in,
with a checkpoint of that batch, one line and exit status 128 + the signal number; the run then continues exactly,
in one process and under DDP; SLURM's warning signal requeues the job, which continues by itself."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.core.signals import take_stop
from src.data.synthetic import write_mnist
from src.run.compose import compose_config
from src.train import train
from tests.conftest import ROOT, child_env
from tests.test_resume import BATCHES, assert_same_end, tiny

pytestmark = pytest.mark.slow  # each test signals processes of its own

STOP_AT = 6  # the signal arrives as batch 6 starts (mid-epoch: 8 batches per epoch, last periodic save at 3)
DDP = ["trainer=ddp_cpu", "data.batch_size=4"]  # 2 ranks x 4 images: 8 batches per epoch, as in one process


def signal_at(batch: int, signum: int, rank: int = 0) -> list[str]:
    return ["+callbacks.signal._target_=tests.signaller.SignalAtBatch", f"+callbacks.signal.batch={batch - 1}",
            f"+callbacks.signal.signum={int(signum)}", f"+callbacks.signal.rank={rank}"]


def start(*overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m src.train` as a user (or SLURM) starts it: the repository on PYTHONPATH, output captured."""
    return subprocess.Popen([sys.executable, "-m", "src.train", *overrides], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env(**(env or {})))


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """(exit status, stdout + stderr); the pipes close when every rank has exited."""
    out, err = process.communicate(timeout=300)
    return process.returncode, out + err


def stop_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("stopped by ")]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    write_mnist(path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(data_dir: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted")
    train(compose_config("train", tiny(data_dir, 3), run))
    return run


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1], ids=lambda s: s.name)
def test_a_signal_stops_at_the_batch_end_with_a_checkpoint_and_the_run_continues_exactly(
    data_dir: Path, uninterrupted: Path, tmp_path: Path, monkeypatch, signum: signal.Signals
) -> None:
    run, overrides = tmp_path / "run", tiny(data_dir, 3)
    env = {}
    if signum == signal.SIGUSR1:  # SLURM's time-limit warning, inside a SLURM job: the job is requeued
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\n")
        (bin_dir / "scontrol").chmod(0o755)
        env = {"SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{child_env()['PATH']}"}
    status, output = finish(start(*overrides, *signal_at(STOP_AT, signum), f"hydra.run.dir={run}", env=env))

    assert status == 128 + signum, output[-3000:]  # 143, 130, 138: not Lightning's 0
    assert stop_line(output) == (f"stopped by {signum.name} at batch {STOP_AT}: saved {run}/checkpoints/last.ckpt; "
                                 f"continue with python -m src.train resume={run}")
    assert "Traceback" not in output
    summary = output[output.index(f"[stopped] {STOP_AT} batches of max_batches={BATCHES}, "):]
    assert f"continue:    python -m src.train resume={run}  (on to max_batches={BATCHES})" in summary
    assert "train more" not in summary
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == STOP_AT  # the batch the signal arrived in, both its optimizer steps taken
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["batches_done"] == STOP_AT  # loader position
    for name in ("generator.pt", "discriminator.pt", "training_progress.gif"):  # what a finished run writes
        assert (run / name).is_file(), name
    assert not list(run.rglob("*.tmp"))

    if signum == signal.SIGTERM:  # as a user continues: resume=<run> and nothing else
        status, output = finish(start(f"resume={run}"))
        assert status == 0, output[-3000:]
    elif signum == signal.SIGINT:
        train(compose_config("train", [*overrides, f"resume={run}"], run))
    else:
        assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
        assert "requeued SLURM job 4242" in output
        monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the requeued job: the same command, the same folder
        train(compose_config("train", overrides, run))
    assert_same_end(uninterrupted, run)


def test_a_second_signal_during_the_save_exits_at_once_and_keeps_the_previous_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    cfg = compose_config("train", [*tiny(data_dir, 4), *signal_at(STOP_AT, signal.SIGINT),
                                   "+callbacks.again._target_=tests.signaller.SignalDuringSave",
                                   f"+callbacks.again.batch={STOP_AT}", "+callbacks.again.signum=2"], tmp_path)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as stopped:
        train(cfg)
    assert stopped.value.code == 130 and take_stop() is None
    assert signal.getsignal(signal.SIGINT) is handler  # the handlers are given back
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 4  # the periodic checkpoint of batch 4, complete and untouched
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "generator.pt").exists()


def test_under_ddp_a_signal_to_one_rank_stops_every_rank_at_the_same_batch(data_dir: Path, tmp_path: Path) -> None:
    stopped_run, reference = tmp_path / "stopped", tmp_path / "uninterrupted"
    overrides = [*tiny(data_dir, 3), *DDP, "+callbacks.report._target_=tests.signaller.ReportBatches"]
    stopping = start(*overrides, *signal_at(STOP_AT, signal.SIGTERM, rank=1), f"hydra.run.dir={stopped_run}")
    uninterrupted = start(*overrides, f"hydra.run.dir={reference}")  # at the same time: two cores, four processes
    (status, output), (reference_status, reference_output) = finish(stopping), finish(uninterrupted)
    assert reference_status == 0, reference_output[-3000:]

    assert status == 143, output[-3000:]
    assert sorted(line for line in output.splitlines() if line.startswith("[test]")) == [
        f"[test] rank {rank} trained until batch {STOP_AT}" for rank in (0, 1)]
    assert stop_line(output).startswith(f"stopped by SIGTERM at batch {STOP_AT}: saved {stopped_run}/checkpoints/")
    assert torch.load(stopped_run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == STOP_AT

    status, output = finish(start(f"resume={stopped_run}"))
    assert status == 0, output[-3000:]
    assert_same_end(reference, stopped_run)


def test_a_sigterm_that_lightning_caught_just_before_training_stops_before_the_first_batch(
    data_dir: Path, tmp_path: Path
) -> None:
    cfg = compose_config("train", [*tiny(data_dir, 3), "+callbacks.early._target_=tests.signaller.SignalAtTrainStart",
                                   "+callbacks.early.signum=15"], tmp_path)
    train(cfg)
    stop = take_stop()
    assert stop is not None and stop.signum == signal.SIGTERM
    assert stop.message == "stopped by SIGTERM before batch 1: nothing new to save"
    assert not (tmp_path / "checkpoints").exists()  # nothing trained, nothing saved


def test_a_signal_as_the_run_ends_waits_for_its_last_files(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    # the signaller first, then the callbacks that write the final files (removed and added back after it)
    status, output = finish(start(*tiny(data_dir, 3), "max_batches=4", f"hydra.run.dir={run}",
                                  "+callbacks.signal._target_=tests.signaller.SignalAtFitEnd",
                                  f"+callbacks.signal.signum={int(signal.SIGTERM)}",
                                  "~callbacks.export_weights", "~callbacks.sample_grids",
                                  "+callbacks.export_weights._target_=src.callbacks.export_weights.ExportWeights",
                                  f"+callbacks.export_weights.output_dir={run}",
                                  "+callbacks.sample_grids._target_=src.callbacks.sample_grids.SampleGrids",
                                  f"+callbacks.sample_grids.output_dir={run}",
                                  "+callbacks.sample_grids.every_n_batches=2"))
    assert status == 0, output[-3000:]
    assert "SIGTERM arrived as the run ended: its last files were finished first" in output
    for name in ("generator.pt", "discriminator.pt", "training_progress.gif", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert "[done] 4 batches of max_batches=4" in output


def test_a_second_signal_in_the_middle_of_a_checkpoint_write_exits_with_its_status(tmp_path: Path, monkeypatch) -> None:
    from src.core import atomic_io
    from src.core.signals import StopSignals

    target = tmp_path / "last.ckpt"
    atomic_io.atomic_save({"w": torch.zeros(10_000)}, target)
    before = target.read_bytes()
    write = atomic_io._RecordingFile.write

    def write_then_signal(self, data):
        # The second Ctrl-C lands while torch.save is writing: the handler's SystemExit is raised in torch's code,
        # whose zip writer then ends the half-written file and reports that instead (as a run showed).
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except SystemExit as exit_:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0") from exit_
        return write(self, data)

    signals = StopSignals()
    signals.install()
    try:
        signals.received = signal.SIGINT  # the first one was recorded: training stopped and is saving
        monkeypatch.setattr(atomic_io._RecordingFile, "write", write_then_signal)
        with pytest.raises(SystemExit) as stopped:
            atomic_io.atomic_save({"w": torch.ones(10_000)}, target)
    finally:
        signals.restore()
        monkeypatch.setattr("src.core.signals._exiting", 0, raising=False)
    assert stopped.value.code == 130  # not torch.save's RuntimeError ("unexpected pos")
    assert target.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR1], ids=lambda s: s.name)
def test_a_signal_before_training_stops_it_before_the_first_batch(data_dir: Path, tmp_path: Path, signum) -> None:
    run = tmp_path / "run"
    status, output = finish(start(*tiny(data_dir, 3), f"hydra.run.dir={run}",
                                  "+callbacks.early._target_=tests.signaller.SignalAtSetup",
                                  f"+callbacks.early.signum={int(signum)}"))
    assert status == 128 + signum, output[-3000:]
    assert stop_line(output) == f"stopped by {signum.name} before batch 1: nothing new to save"
    assert "Traceback" not in output and not (run / "checkpoints").exists()
