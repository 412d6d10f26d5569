"""Shared test setup: the app's own configs pointed at temporary folders, small files for every dataset in
conf/data/, and the real entry points run as a user runs them."""

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.data.synthetic import write_cifar10, write_idx_gz, write_image_folder, write_mnist
from src.run.compose import compose_config

ROOT = Path(__file__).resolve().parents[1]

# `make test` runs the suite in one worker process per core (pytest-xdist): each worker, and each command it starts,
# then computes on one thread, so the workers share the cores instead of contending for them. The tiny models of the
# tests gain nothing from a second thread.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
# The tests run as a user whose environment is activated: `python` finds this interpreter, so the commands a run prints
# start with `python` (src/core/commands.python; tests/test_console.py checks a shell with none activated).
VENV_BIN = str(Path(sys.executable).absolute().parent)
os.environ["PATH"] = os.pathsep.join([VENV_BIN, os.environ.get("PATH", "")])
# Tiny budgets: 2 batches of 8, no worker processes, everything inside tmp_path.
FAST = ["max_batches=2", "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=1",
        "report_every_n_batches=1", "trainer.log_every_n_steps=1"]

# How the tests give each dataset of conf/data/ a few files in its real format: name -> (writer of those files into
# a data folder, the overrides that point the dataset at them; "{data_dir}" stands for that folder). A new
# conf/data/<name>.yaml needs an entry here: every model is trained on every dataset (tests/test_train.py).
TEST_DATA: dict[str, tuple[Callable[[Path], object], list[str]]] = {
    "mnist": (write_mnist, []),
    "cifar10": (write_cifar10, ["data.verify_checksums=false"]),  # the small files can't match the real md5s
    # Debian's layout (IDX .gz files in data.source_dir), unpacked into <data_dir>/FashionMNIST/raw on first use.
    "fashion_mnist": (lambda d: write_idx_gz(d / "fashion-mnist-gz"), ["data.source_dir={data_dir}/fashion-mnist-gz"]),
    # 16 RGB images in two nested classes, one grayscale image, one corrupt file (skipped with a warning) and a .txt
    "folder": (lambda d: write_image_folder(d / "images", per_class=8), ["data.path={data_dir}/images"]),
    # That folder's 17 readable images as LitData chunks, one chunk folder per model size (chunks/<size>).
    "streaming": (lambda d: write_chunks(d / "chunk_images", d / "chunks"),
                  ["data.path={data_dir}/chunks/${{model.image_size}}", "data.num_classes=2"]),
}
MODEL_SIZES = (28, 32, 48, 64)  # the image_size of the configs in conf/model/


def write_chunks(images: Path, out: Path, sizes: tuple[int, ...] = MODEL_SIZES, chunk_size: int = 8) -> Path:
    """write_image_folder's images as src.prepare_data writes them (`out`/<size>, RGB), but in this process with
    LitData's writer: litdata.optimize's worker processes take seconds to start."""
    from litdata.streaming.writer import BinaryWriter

    from src.data.folder import DecodeFile, ImageFiles, find_images, probe
    from src.data.streaming import EncodeSample

    write_image_folder(images, per_class=8)
    files = [p for p in find_images(images) if probe(p) is not None]
    labels = ImageFiles(images, files, "RGB").labels
    counts = np.bincount(labels).astype(np.int64)
    for size in sizes:
        encode = EncodeSample(DecodeFile(size, "RGB", (255, 255, 255)), files, labels, counts)
        writer = BinaryWriter(str(out / str(size)), chunk_size=chunk_size)
        for index in range(len(files)):
            writer[index] = encode(index)
        writer.done()
        writer.merge()
    return out


def small_widths(model: str) -> list[str]:
    """Overrides that keep a CPU test of `model=<model>` fast: the resnet models' published widths (G 256, D 128
    channels at every resolution for resnet32) make a 2-batch run take seconds; the other designs are small already.
    tests/test_resnet.py checks the published widths themselves."""
    return ["model.generator.width=8", "model.discriminator.width=8"] if model.startswith("resnet") else []


def data_overrides(data: str, data_dir: Path) -> list[str]:
    """The overrides that point `data=<data>` at the files the data_dir fixture wrote for it."""
    if data not in TEST_DATA:
        pytest.fail(f"conf/data/{data}.yaml has no test files: add an entry for {data!r} to TEST_DATA in "
                    "tests/conftest.py (a writer from src/data/synthetic.py and the overrides that point at its files)")
    return [o.format(data_dir=data_dir) for o in TEST_DATA[data][1]]


def child_env(**extra: str) -> dict[str, str]:
    """A minimal environment for a command the tests start: the repository on PYTHONPATH, this interpreter's folder
    (an activated environment) and system binaries on PATH, and the worker's thread count (a run computes the same
    sums as the in-process runs it is compared with)."""
    threads = {"OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]} if "OMP_NUM_THREADS" in os.environ else {}
    return {"PYTHONPATH": str(ROOT), "PATH": f"{VENV_BIN}:/usr/bin:/bin", **threads, **extra}


def run_cli(module: str, *overrides: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m <module> <overrides>` in a fresh process, as a user runs it: output captured, a minimal
    environment (child_env)."""
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, capture_output=True, text=True,
                          env=child_env(), timeout=timeout)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """logged() -> what the code under test has logged at INFO and above (the console's lines) since the last call,
    one message a line."""
    caplog.set_level(logging.INFO)

    def read() -> str:
        text = "\n".join(caplog.messages)
        caplog.clear()
        return text

    return read


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder with small files for every dataset in TEST_DATA."""
    path = tmp_path / "data"
    for write, _ in TEST_DATA.values():
        write(path)
    return path


@pytest.fixture
def train_cfg(tmp_path: Path, data_dir: Path) -> Callable[..., DictConfig]:
    """train_cfg("model=dcgan", "data=cifar10", ...) -> the train config with FAST overrides, the dataset pointed
    at its files in data_dir, outputs in tmp_path/run."""

    def make(*overrides: str) -> DictConfig:
        extra = [*FAST, f"paths.data_dir={data_dir}"]
        compose_config("train", [*extra, *overrides])  # which dataset the overrides pick (an experiment may, too)
        data = HydraConfig.get().runtime.choices["data"]
        return compose_config("train", [*extra, *data_overrides(data, data_dir), *overrides], tmp_path / "run")

    return make


class PicklePayload:
    """Unpickling this runs a command that creates `marker`: what a crafted pickle would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
