"""A write that fails (full disk, file size limit) is one line that names the file, the error, the space and what is
intact, exits 2 without a traceback, and leaves the previous file and no temp file."""

import errno
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.core.atomic_io import WriteFailed, atomic_save, atomic_write
from src.data.synthetic import write_mnist
from src.run.compose import compose_config
from src.train import train
from tests.conftest import ROOT, child_env
from tests.test_resume import tiny


def test_a_full_disk_names_the_file_the_free_space_and_the_size_needed(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "last.ckpt"
    atomic_save({"w": torch.zeros(50_000)}, target)  # the previous file: ~200 KB
    before = target.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)  # the bytes fit in the page cache, the flush to disk does not
    with pytest.raises(WriteFailed) as failed:
        atomic_save({"w": torch.ones(50_000)}, target)
    message = str(failed.value)
    assert message.startswith(f"could not write {target}: no space left on device (")
    assert " free on /" in message and "the file needs ~197 KB" in message
    assert "the previous last.ckpt is unchanged and no temp file remains" in message and "\n" not in message
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_failure_that_is_no_write_error_passes_through(tmp_path: Path) -> None:
    def broken(f) -> None:
        raise ValueError("a bug in the writer")

    with pytest.raises(ValueError, match="a bug in the writer"):
        atomic_write(tmp_path / "x.json", broken)
    assert not list(tmp_path.iterdir())


def limit_file_size(limit: int) -> None:
    """In the child: files may not grow past `limit` bytes, and exceeding it fails the write (EFBIG) instead of
    killing the process (SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow  # starts a process
def test_a_checkpoint_that_cannot_be_written_stops_with_one_line_and_keeps_the_previous_one(tmp_path: Path) -> None:
    data_dir, run = tmp_path / "data", tmp_path / "run"
    write_mnist(data_dir)
    overrides = [*tiny(data_dir, 3), "~logger", "sample_every_n_batches=100", "model.ema_decay=0.999"]  # + EMA: 1.2 MB
    train(compose_config("train", [*overrides, "max_batches=4"], run))  # checkpoints at batches 3 and 4
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    assert len(before) > 900_000  # mlp_gan's checkpoint (~1.2 MB) can't be written under the limit below

    result = subprocess.run([sys.executable, "-m", "src.train", *overrides, f"resume={run}", "max_batches=8"], cwd=ROOT,
                            capture_output=True, text=True, env=child_env(),
                            preexec_fn=lambda: limit_file_size(900_000), timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert error == [
        f"Error: could not write {last}: file too large (this process may write files of at most 879 KB, the file "
        f"needs ~1.2 MB); the previous last.ckpt is unchanged and no temp file remains; raise the limit (ulimit -f "
        f"unlimited), then continue with python -m src.train resume={run} (its newest checkpoint, {last} at batch 4, "
        "is intact)"], result.stderr[-3000:]
    assert last.read_bytes() == before and not list(run.rglob("*.tmp"))


@pytest.mark.slow  # starts a process
def test_samples_that_cannot_be_written_keep_the_previous_npz(tmp_path: Path) -> None:
    run = Path(shutil.copytree(ROOT / "tests" / "assets" / "run_from_main_3f56ba1", tmp_path / "run"))
    generate = [sys.executable, "-m", "src.generate", f"ckpt_path={run}"]
    subprocess.run([*generate, "num_samples=16"], cwd=ROOT, env=child_env(), check=True, capture_output=True)
    npz = run / "samples.npz"
    before = npz.read_bytes()
    # 64 samples: the grid (~9 KB) fits under the limit, their npz (~27 KB) does not
    result = subprocess.run([*generate, "num_samples=64"], cwd=ROOT, capture_output=True, text=True, env=child_env(),
                            preexec_fn=lambda: limit_file_size(15_000), timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and error[0].startswith(f"Error: could not write {npz}: file too large"), result.stderr
    assert "the previous samples.npz is unchanged and no temp file remains" in error[0]
    assert npz.read_bytes() == before and not list(run.rglob("*.tmp"))


def test_a_read_only_file_system_is_one_line_even_when_the_cleanup_fails(tmp_path: Path, monkeypatch) -> None:
    def read_only(*args, **kwargs) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "fsync", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)  # the temp file can't be removed either
    with pytest.raises(WriteFailed, match=f"could not write {tmp_path / 'x.json'}: read-only file system"):
        atomic_write(tmp_path / "x.json", lambda f: f.write(b"{}"))


def test_a_full_disk_before_the_first_byte_claims_no_size(tmp_path: Path, monkeypatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteFailed) as failed:
        atomic_write(tmp_path / "new.json", lambda f: None)  # a new file, nothing written yet
    assert "no space left on device (" in str(failed.value) and "needs" not in str(failed.value)


@pytest.mark.slow  # starts a process
def test_a_full_disk_under_the_tensorboard_logs_is_one_line(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data")
    run = tmp_path / "run"
    with_bar = [o for o in tiny(tmp_path / "data", 4) if "progress_bar" not in o]  # the bar must not redraw below
    result = subprocess.run([sys.executable, "-m", "src.train", *with_bar, "max_batches=12",
                             f"hydra.run.dir={run}", "+callbacks.full._target_=tests.killer.FullDiskInLogger",
                             "+callbacks.full.batch=5"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=child_env(), timeout=300)  # as on a terminal
    result.stderr = result.stdout
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and re.fullmatch(
        re.escape(f"Error: could not write the TensorBoardLogger logs in {run / 'tensorboard'}: no space left on "
                  "device (") + r"[\d.]+ [KMGT]?B free on (\S+)\); free space on \1 \(or write elsewhere\), then "
        + re.escape(f"continue with python -m src.train resume={run} (its newest checkpoint, "
                    f"{run / 'checkpoints' / 'last.ckpt'} at batch 4, is intact)"), errors[0]), result.stderr[-3000:]
    assert re.split(r"[\r\n]+", result.stderr.strip())[-1] == errors[0]  # the last thing on the screen
