"""Class-conditional GANs: every architecture takes labels, the projection discriminator, labels from every dataset,
a conditional run through src.train, per-class sampling through src.generate, and the per-class metrics."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.metrics.evaluator import class_scores
from src.metrics.scores import fid_metric
from src.metrics.settings import MetricSettings
from src.networks.conditional import ClassBatchNorm, ConditionalGenerator, ProjectionDiscriminator
from src.run.compose import compose_config, group_options
from tests.conftest import TEST_DATA, data_overrides, run_cli, small_widths


def conditional_gan(model: str, *overrides: str):
    cfg = compose_config("train", [f"model={model}", "model.conditional=true", *small_widths(model), *overrides])
    return instantiate(cfg.model).eval()


@pytest.mark.parametrize("model", group_options("model"))
def test_every_architecture_takes_labels_and_starts_as_its_unconditional_self(model: str) -> None:
    gan = conditional_gan(model)
    size, channels = gan.hparams.image_size, gan.hparams.channels
    z, labels = torch.randn(4, gan.z_dim), torch.tensor([0, 3, 7, 9])
    images = gan.generator(z, labels)
    assert isinstance(gan.generator, ConditionalGenerator) and images.shape == (4, channels, size, size)
    assert isinstance(gan.discriminator, ProjectionDiscriminator)
    with torch.no_grad():
        logits = gan.discriminator(images, labels)
        assert logits.shape == (4,)
        # The class embedding starts at zero: the projection term is zero and the logit is the wrapped D's own.
        assert torch.equal(logits, gan.discriminator.net(images))
        gan.discriminator.embed.weight.normal_()
        projection = (gan.discriminator.embed(labels) * gan.discriminator.features(images)).sum(dim=1)
        torch.testing.assert_close(gan.discriminator(images, labels), gan.discriminator.net(images) + projection)
        # Changing only the label changes the image made from the same noise.
        assert not torch.allclose(gan.generator(z, labels), gan.generator(z, (labels + 1) % 10))


@pytest.mark.parametrize("model", group_options("model"))
def test_class_batch_norm_takes_scale_and_shift_from_the_label(model: str) -> None:
    gan = conditional_gan(model, "model.class_batch_norm=true")
    norms = [m for m in gan.generator.modules() if isinstance(m, ClassBatchNorm)]
    assert norms and not any(type(m).__name__.startswith("BatchNorm") and m.affine for m in gan.generator.modules())
    z, labels = torch.randn(4, gan.z_dim), torch.tensor([0, 0, 1, 1])
    with torch.no_grad():
        gan.generator.embed.weight.zero_()  # the joined embedding says nothing: only the BatchNorms can
        before = gan.generator(z, labels)
        norms[0].shift.weight[1] += 1.0
        after = gan.generator(z, labels)
    assert torch.equal(before[:2], after[:2]) and not torch.allclose(before[2:], after[2:])
    assert gan.generator(z, labels).shape == (4, gan.hparams.channels, gan.hparams.image_size, gan.hparams.image_size)


def test_class_batch_norm_alone_is_refused() -> None:
    with pytest.raises(UserError, match="model.class_batch_norm=true is conditional BatchNorm: it needs "
                                        "model.conditional=true"):
        instantiate(compose_config("train", ["model.class_batch_norm=true"]).model)


def test_unconditional_models_are_not_wrapped_and_keep_their_keys() -> None:
    gan = instantiate(compose_config("train", ["model=dcgan"]).model)
    assert not isinstance(gan.generator, ConditionalGenerator) and gan.fixed_labels is None
    assert "discriminator.net.0.weight" in gan.state_dict() and not any("embed" in k for k in gan.state_dict())


def test_fixed_grid_has_one_row_per_class_with_the_same_noise_down_each_column() -> None:
    gan = conditional_gan("dcgan28")
    columns = gan.grid_columns
    assert columns == 7  # 64 fixed vectors over 10 classes, rounded up
    assert gan.fixed_labels.tolist() == [c for c in range(10) for _ in range(columns)]
    rows = gan.fixed_noise.view(10, columns, -1)
    assert all(torch.equal(rows[0], rows[c]) for c in range(10))


def test_labels_without_a_request_follow_the_class_shares_and_draw_nothing() -> None:
    gan = conditional_gan("mlp_gan")
    gan.generator.class_probs.copy_(torch.tensor([0.5, 0.25, 0.25, 0, 0, 0, 0, 0, 0, 0]))
    state = torch.get_rng_state()
    assert gan.generator.proportional_labels(8, torch.device("cpu")).tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert torch.equal(state, torch.get_rng_state())
    drawn = gan.generator.random_labels(4000, torch.device("cpu"))
    assert drawn.max() <= 2 and abs(float((drawn == 0).double().mean()) - 0.5) < 0.05


@pytest.mark.parametrize("data", list(TEST_DATA))
def test_labels_flow_from_every_datamodule(data: str, data_dir: Path, tmp_path: Path) -> None:
    cfg = compose_config("train", [f"data={data}", f"paths.data_dir={data_dir}", "data.num_workers=0",
                                   "data.batch_size=4", *data_overrides(data, data_dir)], tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.train_dataloader()))
    num_classes = int(cfg.data.num_classes)
    assert num_classes == (2 if data in ("folder", "streaming") else 10)  # the folder (and its chunks): 2 classes
    assert labels.dtype == torch.long and len(labels) == len(images) and 0 <= labels.min() <= labels.max() < num_classes
    shares = datamodule.label_distribution()
    assert shares.shape == (num_classes,) and float(shares.sum()) == pytest.approx(1.0) and (shares > 0).all()


def test_a_flat_folder_cannot_train_a_conditional_gan(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.new("L", (28, 28), color=i * 40).save(flat / f"{i}.png")
    cfg = compose_config("train", ["data=folder", f"data.path={flat}", "model=dcgan28", "model.conditional=true"])
    assert cfg.data.num_classes == 1
    with pytest.raises(UserError, match="needs labelled data with at least 2 classes, got 1"):
        instantiate(cfg.model)


@pytest.mark.slow  # starts a process
def test_a_conditional_run_trains_samples_per_class_and_resumes(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = [f"paths.data_dir={data_dir}", "data.batch_size=8", "data.num_workers=0", "~callbacks.progress_bar"]
    trained = run_cli("src.train", "model=dcgan28", "model.conditional=true", "max_batches=3", *common,
                      "sample_every_n_batches=3", f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (run / "samples" / "batch_0000003.png").is_file()
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert {"generator.embed.weight", "discriminator.embed.weight", "fixed_labels"} <= state.keys()

    per_class = run_cli("src.generate", f"ckpt_path={run}", "per_class=2", f"output_dir={tmp_path / 'all'}")
    assert per_class.returncode == 0, per_class.stderr[-3000:]
    saved = np.load(tmp_path / "all" / "samples.npz")
    assert saved["images"].shape == (20, 1, 28, 28) and saved["labels"].tolist() == [c for c in range(10) for _ in "ab"]
    one = run_cli("src.generate", f"ckpt_path={run}", "class_id=3", "num_samples=5", f"output_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    assert np.load(tmp_path / "one" / "samples.npz")["labels"].tolist() == [3] * 5
    wrong = run_cli("src.generate", f"ckpt_path={run}", "class_id=10")
    assert wrong.returncode != 0 and "Error: class_id=10 is not a class of this run: pick 0..9" in wrong.stderr

    resumed = run_cli("src.train", f"resume={run}", "max_batches=4", *common)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


@pytest.mark.slow  # starts a process
def test_generate_refuses_a_class_for_an_unconditional_run(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = run_cli("src.train", "model=mlp_gan", "model.generator.width=8", "max_batches=1", "data.batch_size=8",
                      "data.num_workers=0", f"paths.data_dir={data_dir}", "~callbacks.progress_bar",
                      f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    refused = run_cli("src.generate", f"ckpt_path={run}", "class_id=1")
    assert "Error: class_id/per_class need a conditional run (trained with model.conditional=true)" in refused.stderr


def test_class_accuracy_and_intra_class_fid_on_a_known_case() -> None:
    """Two classes of 2-d features far apart; the classifier's logits pick the class by the first feature's sign."""
    generator = torch.Generator().manual_seed(0)
    real = {0: torch.randn(400, 2, generator=generator) - 5, 1: torch.randn(400, 2, generator=generator) + 5}
    states = {}
    for label, features in real.items():
        metric = fid_metric(2)
        metric.update(features.double(), real=True)
        states[label] = dict(metric.metric_state)
    settings = MetricSettings(metrics=["fid", "coverage"], extractor="domain")
    labels = torch.tensor([0] * 300 + [1] * 300)

    def logits_of(features: torch.Tensor) -> torch.Tensor:
        return torch.stack([-features[:, 0], features[:, 0]], dim=1)

    right = torch.cat([torch.randn(300, 2, generator=generator) - 5, torch.randn(300, 2, generator=generator) + 5])
    scores = class_scores(settings, states, right, logits_of(right), labels)
    assert scores["class_accuracy_domain"] == 1.0 and scores["intra_fid_domain"] < 0.2
    swapped = torch.cat([right[300:], right[:300]])  # every sample looks like the other class
    scores = class_scores(settings, states, swapped, logits_of(swapped), labels)
    assert scores["class_accuracy_domain"] == 0.0 and scores["intra_fid_domain"] > 150  # |10 - (-10)|^2 / ... ~ 200
    half = torch.cat([right[:150], swapped[150:300], right[300:]])
    assert class_scores(settings, states, half, logits_of(half), labels)["class_accuracy_domain"] == 0.75


def test_the_generator_input_grows_by_the_class_embedding_for_every_model() -> None:
    for model in group_options("model"):
        cfg = compose_config("train", [f"model={model}", "model.conditional=true", "model.class_embedding_dim=5"])
        assert cfg.model.generator.z_dim == cfg.model.z_dim + 5
        assert compose_config("train", [f"model={model}"]).model.generator.z_dim == cfg.model.z_dim
