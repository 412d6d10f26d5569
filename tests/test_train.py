"""Training through the app's own configs and real DataModules, and what a run leaves behind."""

from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.generate import generate
from src.train import train
from tests.conftest import compose_config

MODELS = ["mlp_gan", "conv_gan", "dcgan28", "dcgan", "dcgan64"]


@pytest.mark.parametrize("data", ["mnist", "cifar10"])
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_on_every_dataset(train_cfg, model: str, data: str) -> None:
    cfg = train_cfg(f"model={model}", f"data={data}", "~logger", "~callbacks", "trainer.enable_progress_bar=false")
    metrics = train(cfg)
    assert np.isfinite(metrics["loss/g"]) and np.isfinite(metrics["loss/d"])
    assert 0 < metrics["D(x)"] < 1 and 0 < metrics["D(G(z))"] < 1


def test_budget_counts_batches_not_optimizer_steps(train_cfg) -> None:
    cfg = train_cfg("model=mlp_gan", "model.n_critic=2", "max_batches=3", "~logger", "~callbacks")
    assert cfg.trainer.max_steps == 9  # 3 batches x (2 D steps + 1 G step)
    train(cfg)
    # With no callbacks configured, Lightning's own default checkpoint is written at the end.
    (ckpt,) = (Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["global_step"] == 9 and state["epoch"] == 0


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One short default-config run (dcgan on MNIST files), shared by the artifact tests below."""
    from tests.fakedata import write_mnist

    root = tmp_path_factory.mktemp("run")
    write_mnist(root / "data")
    cfg = compose_config(
        "train",
        ["max_batches=4", "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=2",
         "report_every_n_batches=2", f"paths.data_dir={root / 'data'}"],
        root / "out",
    )
    train(cfg)
    return root / "out"


def test_run_folder_holds_everything_a_user_expects(finished_run: Path) -> None:
    for name in ["config.yaml", "checkpoints/last.ckpt", "generator.pt", "discriminator.pt",
                 "training_progress.gif", "samples/batch_0000000.png", "samples/batch_0000004.png",
                 "samples/epoch_000.png"]:
        assert (finished_run / name).is_file(), name
    events = EventAccumulator(str(finished_run / "tensorboard")).Reload()
    assert {"samples/fixed_noise", "samples/real"} <= set(events.Tags()["images"])
    assert {"loss/g", "loss/d", "D(x)", "D(G(z))"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Images("samples/fixed_noise")][-1] == 4  # x-axis in batches


def test_checkpoint_holds_fixed_noise_and_both_optimizers(finished_run: Path) -> None:
    ckpt = torch.load(finished_run / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"]["fixed_noise"].shape == (64, 100)
    assert len(ckpt["optimizer_states"]) == 2
    assert ckpt["global_step"] == 8  # 4 batches x 2 optimizer steps
    generator = torch.load(finished_run / "generator.pt", weights_only=True)  # the EMA generator by default
    assert all(torch.equal(v, ckpt["state_dict"][f"ema.module.{k}"]) for k, v in generator.items())


@pytest.mark.parametrize("source", ["checkpoints/last.ckpt", "."])
def test_generate_writes_png_and_npz(finished_run: Path, tmp_path: Path, source: str) -> None:
    cfg = compose_config("generate", [f"ckpt_path={finished_run / source}", "num_samples=37",
                                      "batch_size=16", f"output_dir={tmp_path}"])
    generate(cfg)
    images = np.load(tmp_path / "samples.npz")["images"]
    assert images.dtype == np.uint8 and images.shape == (37, 1, 32, 32)
    assert images.std() > 0 and (tmp_path / "samples.png").is_file()


def test_generate_is_reproducible_and_default_goes_next_to_the_checkpoint(finished_run: Path) -> None:
    ckpt = finished_run / "checkpoints" / "last.ckpt"
    a = np.load(generate(compose_config("generate", [f"ckpt_path={ckpt}", "num_samples=5"])) / "samples.npz")
    first = a["images"].copy()
    b = np.load(generate(compose_config("generate", [f"ckpt_path={ckpt}", "num_samples=5"])) / "samples.npz")
    assert (ckpt.parent / "samples.npz").is_file() and np.array_equal(first, b["images"])


def test_loss_line_in_the_design_format(train_cfg, capsys) -> None:
    train(train_cfg("model=mlp_gan", "report_every_n_batches=2", "~logger"))
    out = capsys.readouterr().out
    assert "Step 2: Generator loss: " in out and ", discriminator loss: " in out
