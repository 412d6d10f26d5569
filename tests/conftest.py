"""Compose the app's own configs (conf/) for tests, pointed at temporary folders and small data."""

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import src  # noqa: F401  (registers the config resolvers)
from tests.fakedata import write_cifar10, write_mnist

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
# Tiny budgets: 2 batches of 8, no worker processes, everything inside tmp_path.
FAST = ["max_batches=2", "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=1",
        "report_every_n_batches=1"]


def compose_config(config_name: str, overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    write_mnist(path)
    write_cifar10(path)
    return path


@pytest.fixture
def train_cfg(tmp_path: Path, data_dir: Path) -> Callable[..., DictConfig]:
    """train_cfg("model=dcgan", ...) -> the train config with FAST overrides, data and outputs in tmp_path."""

    def make(*overrides: str) -> DictConfig:
        extra = [*FAST, f"paths.data_dir={data_dir}"]
        if any(o.startswith("data=cifar10") for o in overrides):
            extra.append("data.verify_checksums=false")  # the small test files can't match the real md5s
        return compose_config("train", [*extra, *overrides], tmp_path / "run")

    return make
