"""Every model trains on every dataset through the app's own configs, and a run leaves behind what a user expects
(checkpoint, weight files, grids, TensorBoard events) and samples from."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.synthetic import write_mnist
from src.generate import generate
from src.run.compose import compose_config, group_options
from src.train import train
from tests.conftest import small_widths


class WeightsAtStartAndEnd(L.Callback):
    """Test-only: copies of the GAN's parameters when fit starts and when it ends, kept on the class for the test."""

    taken: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {k: v.detach().clone() for k, v in pl_module.named_parameters()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        end = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        WeightsAtStartAndEnd.taken.append((self.start, end))


# Every config in conf/model/ on every one in conf/data/ (tests/conftest.py TEST_DATA writes files for each).
@pytest.mark.parametrize("data", group_options("data"))
@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_trains_on_every_dataset(train_cfg, model: str, data: str) -> None:
    cfg = train_cfg(f"model={model}", f"data={data}", *small_widths(model), "~logger", "~callbacks",
                    "trainer.enable_progress_bar=false")
    with open_dict(cfg):
        cfg.callbacks = {"weights": {"_target_": f"{__name__}.WeightsAtStartAndEnd"}}
    WeightsAtStartAndEnd.taken.clear()
    metrics = train(cfg)
    assert np.isfinite(metrics["loss/g"]) and np.isfinite(metrics["loss/d"])
    (start, end), = WeightsAtStartAndEnd.taken
    assert start.keys() == end.keys()
    for net in ("generator", "discriminator"):  # both optimizers stepped their own network
        names = [k for k in start if k.startswith(f"{net}.")]
        assert names, f"no {net} parameters"
        assert any(not torch.equal(start[k], end[k]) for k in names), f"the {net} did not change"
        assert all(torch.isfinite(end[k]).all() for k in names)


def test_budget_counts_batches_not_optimizer_steps(train_cfg) -> None:
    cfg = train_cfg("model=mlp_gan", "model.n_critic=2", "max_batches=3", "~logger", "~callbacks")
    assert cfg.trainer.max_steps == 3  # Lightning's counter counts batches (2 D steps + 1 G step each)
    train(cfg)
    # With no callbacks configured, Lightning's own default checkpoint is written at the end.
    (ckpt,) = (Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["global_step"] == 3 and state["epoch"] == 0


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One short default-config run (dcgan on MNIST files), shared by the artifact tests below."""
    root = tmp_path_factory.mktemp("run")
    write_mnist(root / "data")
    cfg = compose_config(
        "train",
        ["max_batches=4", "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=2",
         "report_every_n_batches=2", "trainer.log_every_n_steps=2", f"paths.data_dir={root / 'data'}"],
        root / "out",
    )
    train(cfg)
    return root / "out"


def test_run_folder_holds_everything_a_user_expects(finished_run: Path) -> None:
    for name in ["config.yaml", "checkpoints/last.ckpt", "generator.pt", "discriminator.pt",
                 "training_progress.gif", "samples/batch_0000000.png", "samples/batch_0000004.png"]:
        assert (finished_run / name).is_file(), name
    assert not (finished_run / "samples/epoch_000.png").exists()  # 4 of the epoch's 8 batches: it is not over
    events = EventAccumulator(str(finished_run / "tensorboard")).Reload()
    assert {"samples/fixed_noise", "samples/real"} <= set(events.Tags()["images"])
    assert {"loss/g", "loss/d", "D(x)", "D(G(z))"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Images("samples/fixed_noise")][-1] == 4  # x-axis in batches


def test_checkpoint_holds_fixed_noise_and_both_optimizers(finished_run: Path) -> None:
    ckpt = torch.load(finished_run / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"]["fixed_noise"].shape == (64, 100)
    assert len(ckpt["optimizer_states"]) == 2
    assert ckpt["global_step"] == 4  # 4 batches
    generator = torch.load(finished_run / "generator.pt", weights_only=True)  # the trained G (the EMA is off)
    trained = {k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items() if k.startswith("generator.")}
    assert generator.keys() == trained.keys() and len(trained) > 0
    assert all(torch.equal(v, trained[k]) for k, v in generator.items())
    assert not any(k.startswith("ema.") for k in ckpt["state_dict"])
    assert not (finished_run / "generator_raw.pt").exists()


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


def test_loss_line_in_the_design_format(train_cfg, logged) -> None:
    train(train_cfg("model=mlp_gan", "report_every_n_batches=2", "~logger"))
    out = logged()
    assert "Step 2: Generator loss: " in out and ", discriminator loss: " in out
