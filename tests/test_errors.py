"""Bad input: one line that names the key and a value that works, raised before any training or download work."""

import re
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from src.core.errors import UserError
from src.run.compose import compose_config, group_options
from src.train import train
from tests.conftest import FAST


def one_line_error(overrides: list[str], tmp_path: Path, data_dir: Path) -> str:
    cfg = compose_config("train", [*FAST, f"paths.data_dir={data_dir}", *overrides], tmp_path / "run")
    with pytest.raises(UserError) as caught:
        train(cfg)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("group", "typo"), [("model", "dcgam"), ("data", "cifar"), ("trainer", "gpus"),
                                             ("logger", "tensorbord")])
def test_unknown_group_names_list_the_available_ones(group: str, typo: str) -> None:
    """The options Hydra finds are exactly the group's files (no shared partial such as model=_base); the CLIs say
    them in one line (tests/test_cli.py)."""
    with pytest.raises(MissingConfigException, match=f"Could not find '{group}/{typo}'") as caught:
        compose_config("train", [f"{group}={typo}"])
    assert sorted(caught.value.options) == group_options(group)  # no shared partial (model=_base) among them


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # a model asked for a size it can't produce, and sizes/channels that disagree between model and data
        (["model=dcgan", "model.image_size=64"], "model dcgan produces 32x32 images, not 64x64: leave"),
        (["model=dcgan64", "model.image_size=48"], "model dcgan64 produces 64x64 images, not 48x48"),
        (["model=conv_gan", "model.image_size=30"], "model.image_size to be a positive multiple of 4, got 30: try 32"),
        (["model=dcgan", "data.image_size=28"], "data.image_size=28 but the model makes 32x32 images"),
        (["model=dcgan28", "model.channels=3"], "model.channels=3 but data.channels=1: set data.channels=3"),
        (["data.channels=2"], "data.channels must be 1 (grayscale) or 3 (RGB), got 2"),
        # impossible values
        (["model.lr_g=0"], "model.lr_g must be positive, got 0: e.g. model.lr_g=2e-4"),
        (["model.lr_d=-1e-4"], "model.lr_d must be positive, got -0.0001: e.g. model.lr_d=2e-4"),
        (["data.batch_size=0"], "data.batch_size must be positive, got 0: e.g. data.batch_size=64"),
        (["model.n_critic=0"], "model.n_critic must be positive, got 0: e.g. model.n_critic=1"),
        (["model.n_critic=1.5"], "model.n_critic must be a positive integer, got 1.5: e.g. model.n_critic=1"),
        (["max_batches=-3"], "max_batches must be positive, got -3: e.g. max_batches=1200"),
        (["model.lr_g=nan"], "model.lr_g must be positive, got nan: e.g. model.lr_g=2e-4"),
        (["max_minutes=nan"], "max_minutes must be positive, got nan"),
        (["model.betas=[1.5,0.999]"], "model.betas must be two numbers in [0, 1), got [1.5, 0.999]"),
        (["model.betas=[0.5]"], "model.betas must be two numbers in [0, 1), got [0.5]"),
        (["data.batch_size=1"], "data.batch_size=1: the generators' BatchNorm needs at least 2 images a batch"),
        (["trainer.precision=16-true"], "trainer.precision=16-true is not supported: use 32-true"),
        (["trainer.precision=banana"], "trainer.precision=banana is not supported: use 32-true"),
        (["trainer.devices=3"], "trainer.devices=3 needs a multi-process strategy for a GAN: use trainer=ddp"),
        (["checkpoint_every_n_batches=-1"], "checkpoint_every_n_batches must be a whole number of batches"),
        (["seed=abc"], "seed must be a whole number from 0 to 4294967295, got 'abc': e.g. seed=42"),
        (["seed=-1"], "seed must be a whole number from 0 to 4294967295, got -1"),
        (["model.z_dim=100000000"], "src.gan.module.GAN needs more memory than this machine can give (it asked for"),
        # files
        (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path=/nonexistent/last.ckpt does not exist"),
        (["resume=/nonexistent/run"], "resume=/nonexistent/run does not exist: pass a run folder"),
        (["data=folder"], "data.path is required: add data.path=... to the command line"),
    ],
)
def test_bad_train_input_is_one_line_naming_the_fix(overrides, expected, tmp_path: Path, data_dir: Path) -> None:
    assert expected in one_line_error(overrides, tmp_path, data_dir)


def test_config_errors_come_before_any_download(tmp_path: Path) -> None:
    """With no data at all, a bad value is still what the user hears about first, and nothing is fetched."""
    data_dir = tmp_path / "no_data_here"
    message = one_line_error(["data=cifar10", "model.lr_g=0"], tmp_path, data_dir)
    assert message.startswith("model.lr_g must be positive")
    assert not data_dir.exists()


def test_checkpoint_truncated_or_of_another_model(train_cfg, tmp_path: Path, data_dir: Path) -> None:
    train(train_cfg("model=mlp_gan", "model.generator.width=8"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last.is_file()

    foreign = one_line_error(["model=conv_gan", f"ckpt_path={last}"], tmp_path / "b", data_dir)
    assert f"ckpt_path={last} is a checkpoint of another model" in foreign
    assert "its run used model.generator._target_=src.networks.mlp_gan.Generator" in foreign

    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    message = one_line_error(["model=mlp_gan", f"ckpt_path={truncated}"], tmp_path / "c", data_dir)
    assert f"ckpt_path={truncated} is not a readable checkpoint (truncated or not a torch file" in message

    weights_only = tmp_path / "weights.ckpt"
    torch.save({"generator": {}}, weights_only)
    message = one_line_error(["model=mlp_gan", f"ckpt_path={weights_only}"], tmp_path / "d", data_dir)
    assert "holds no training state (weights only?)" in message


def test_output_folder_that_cannot_be_made(tmp_path: Path, data_dir: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = compose_config("train", [*FAST, f"paths.data_dir={data_dir}"], blocker / "run")
    with pytest.raises(UserError, match=f"paths.output_dir={blocker}/run cannot be created: {blocker} is a file"):
        train(cfg)


@pytest.mark.skipif(not Path("/proc/sys").is_dir(), reason="needs Linux's /proc/sys")
def test_output_folder_without_write_permission(tmp_path: Path, data_dir: Path) -> None:
    # A folder that refuses new entries even to root (tests run as root in CI, and root ignores mode bits such as
    # chmod 555): Linux answers "no write access" for /proc/sys itself, capabilities or not, and containers
    # usually mount it read-only on top of that.
    output = Path("/proc/sys/gan_template_test/run")
    cfg = compose_config("train", [*FAST, f"paths.data_dir={data_dir}"], output)
    message = f"paths.output_dir={output} is not writable (no write permission in /proc/sys)"
    with pytest.raises(UserError, match=re.escape(message)):
        train(cfg)
