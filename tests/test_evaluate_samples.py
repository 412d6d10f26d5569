"""`python -m src.evaluate samples=<npz> data=<dataset>` scores images made anywhere with the protocol a checkpoint
gets: real images score better than noise, the layouts a framework may save agree, labels add class accuracy, and
every wrong combination is one line."""

import json
from pathlib import Path

import numpy as np
import pytest

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.evaluate import evaluate
from src.metrics.realdata import load_uint8, split_dataset
from src.run.compose import compose_config, group_options
from src.train_classifier import train_classifier
from tests.conftest import run_cli
from tests.test_metrics_pipeline import write_class_patterns

# 16-d domain features (classifier width 4); 100 samples: above what FID, KID, IS and PRDC need.
SMALL = ["num_samples=100", "metrics.kid_subset_size=20", "metrics.kid_subsets=5", "metrics.is_splits=2",
         "metrics.batch_size=50"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """(data folder with its 32x32 MNIST classifier, the 100 test images at 32x32 as uint8 N x 1 x 32 x 32, their
    labels): test images stand in for a perfect generator."""
    data_dir = tmp_path_factory.mktemp("samples") / "data"
    write_class_patterns(data_dir)
    overrides = [f"paths.data_dir={data_dir}", "data.num_workers=0"]
    train_classifier(compose_config("train_classifier", [*overrides, "classifier.width=4", "epochs=4",
                                                         "batch_size=30"]))
    datamodule = instantiate(compose_config("train", overrides).data)
    images, labels = load_uint8(split_dataset(datamodule, "test"))
    return data_dir, images.numpy(), labels.numpy()


def evaluate_file(data_dir: Path, path: Path, *overrides: str) -> dict[str, float]:
    report = evaluate(compose_config("evaluate", [f"samples={path}", "data=mnist", f"data_dir={data_dir}", *SMALL,
                                                  *overrides]))
    return {row["metric"]: row["value"] for row in report["rows"]}


def noise_like(images: np.ndarray) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, images.shape, dtype=np.uint8)


@pytest.mark.slow  # starts a process
def test_the_cli_scores_an_npz_and_prints_its_protocol(dataset, tmp_path: Path) -> None:
    data_dir, images, _ = dataset
    np.savez(tmp_path / "real.npz", images=images)
    result = run_cli("src.evaluate", f"samples={tmp_path / 'real.npz'}", "data=mnist", f"data_dir={data_dir}", *SMALL,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "protocol: extractor domain classifier mnist_32_1.pt (test acc" in result.stdout
    assert ("100 samples (32x32x1); reference MNIST train (300 images); resize: real images to 32x32 as in "
            "training, samples as made, extractor: none") in result.stdout
    report = json.loads((tmp_path / "real_metrics.json").read_text())
    assert report["samples"] == str(tmp_path / "real.npz") and report["protocol"] in result.stdout
    real = {row["metric"]: row["value"] for row in report["rows"]}
    assert {"fid_domain", "kid_domain", "precision_domain", "recall_domain", "density_domain",
            "coverage_domain"} <= real.keys()

    np.savez(tmp_path / "noise.npz", images=noise_like(images))
    noise = evaluate_file(data_dir, tmp_path / "noise.npz")
    assert real["fid_domain"] < 0.5 * noise["fid_domain"]
    assert real["precision_domain"] > 0.5 > 0.1 > noise["precision_domain"]
    assert real["coverage_domain"] > 0.5 > 0.1 > noise["coverage_domain"]


def test_other_layouts_give_the_same_numbers_and_labels_add_class_accuracy(dataset, tmp_path: Path) -> None:
    data_dir, images, labels = dataset
    np.savez(tmp_path / "nchw.npz", images=images)
    np.savez(tmp_path / "nhwc.npz", images=images.transpose(0, 2, 3, 1))
    np.savez(tmp_path / "nhw.npz", images=images[:, 0], labels=labels)
    nchw = evaluate_file(data_dir, tmp_path / "nchw.npz")
    # Equal up to the order of float64 sums: FID of real test images against the train split is ~0.001.
    assert evaluate_file(data_dir, tmp_path / "nhwc.npz") == pytest.approx(nchw, rel=1e-6, abs=1e-6)
    with_labels = evaluate_file(data_dir, tmp_path / "nhw.npz")
    assert with_labels.pop("class_accuracy_domain") > 0.5  # the test images' own labels; chance is 0.1
    assert with_labels == pytest.approx(nchw, rel=1e-6, abs=1e-6)


def test_num_samples_takes_the_first_images_of_a_larger_file(dataset, tmp_path: Path) -> None:
    data_dir, images, _ = dataset
    np.savez(tmp_path / "many.npz", images=images)
    report = evaluate(compose_config("evaluate", [f"samples={tmp_path / 'many.npz'}", "data=mnist",
                                                  f"data_dir={data_dir}", *SMALL, "num_samples=60"]))
    assert report["title"] == f"60 images of {tmp_path / 'many.npz'} (the first of 100)"
    assert {row["samples"] for row in report["rows"]} == {60}
    np.savez(tmp_path / "first.npz", images=images[:60])
    first = evaluate_file(data_dir, tmp_path / "first.npz")
    assert first == pytest.approx({row["metric"]: row["value"] for row in report["rows"]}, rel=1e-6, abs=1e-6)


def wrong(tmp_path: Path, name: str, array: np.ndarray | None = None, **arrays: np.ndarray) -> str:
    path = tmp_path / name
    if array is not None:
        np.savez(path, images=array, **arrays)
    return str(path)


@pytest.mark.parametrize(("make", "overrides", "message"), [
    (lambda t, x: wrong(t, "a.npz", x), ["ckpt_path=some/run"], r"ckpt_path=some/run and samples=.*a.npz are both set"),
    (lambda t, x: None, [], r"nothing to measure: give ckpt_path=<run folder or .ckpt> .* or samples=<file.npz> "
                            r"data=<dataset>"),
    (lambda t, x: None, ["ckpt_path=some/run", "data=mnist"], "data= is for samples=: a checkpoint is measured"),
    (lambda t, x: wrong(t, "a.npz", x), ["~data"], r"needs the dataset to measure against: add data=<name>, one of "
                                                   + ", ".join(group_options("data"))),
    (lambda t, x: wrong(t, "a.npz", x), ["use_ema=true"], "use_ema is for ckpt_path=: drop it with samples="),
    (lambda t, x: str(t / "none.npz"), [], r"samples=.*none.npz does not exist"),
    (lambda t, x: wrong(t, "rgb.npz", np.repeat(x, 3, axis=1)), [],
     "holds 3-channel images but the dataset is read with data.channels=1: add data.channels=3"),
    (lambda t, x: wrong(t, "a.npz", x), ["data.image_size=28"], r"holds 32x32 images but data.image_size=28: drop"),
    (lambda t, x: wrong(t, "f.npz", x.astype(np.float32) / 255), [], "images are float32, not uint8 in 0..255"),
    (lambda t, x: wrong(t, "wide.npz", x[:, :, :, :30]), [], r"images of shape 100x1x32x30 are neither"),
    (lambda t, x: wrong(t, "l.npz", x, labels=np.zeros(3, np.int64)), [], "`labels` must be one integer class per"),
    (lambda t, x: (np.savez(t / "other.npz", arr_0=x), str(t / "other.npz"))[1], [],
     r"has no `images` array \(it holds arr_0\)"),
    (lambda t, x: ((t / "text.npz").write_text("no zip"), str(t / "text.npz"))[1], [], "is not a readable .npz"),
])
def test_wrong_inputs_are_one_line(dataset, tmp_path: Path, make, overrides: list[str], message: str) -> None:
    data_dir, images, _ = dataset
    samples = make(tmp_path, images)
    source = [f"samples={samples}", "data=mnist"] if samples else []
    with pytest.raises(UserError, match=message) as caught:
        evaluate(compose_config("evaluate", [*source, f"data_dir={data_dir}", *SMALL, *overrides]))
    assert "\n" not in str(caught.value)


def test_samples_of_another_size_need_a_classifier_of_that_size(dataset, tmp_path: Path) -> None:
    """The samples are never resized: the real images are, so the domain classifier must exist at that size."""
    data_dir, images, _ = dataset
    np.savez(tmp_path / "small.npz", images=images[:, :, 2:30, 2:30])
    with pytest.raises(UserError, match=r"no domain classifier for MNIST at 28x28x1 .* `python -m "
                                        r"src.train_classifier data=mnist model.image_size=28 data.channels=1`"):
        evaluate_file(data_dir, tmp_path / "small.npz")


@pytest.mark.slow  # starts a process
def test_the_cli_refuses_a_wrong_combination_in_one_line(tmp_path: Path) -> None:
    result = run_cli("src.evaluate", "samples=x.npz", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "Error: samples=x.npz needs the dataset to measure against: add data=<name>, " \
        f"one of {', '.join(group_options('data'))} (e.g. data=mnist)"
