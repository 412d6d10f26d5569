"""Metrics work end to end on small MNIST files whose classes are learnable: the domain classifier CLI, the
training callback with best.ckpt, the evaluate CLI with its cache, and the Inception path with a stand-in."""

import json
import os
import re
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from src.core.errors import UserError
from src.data.mnist_rebuild import write_idx
from src.evaluate import evaluate
from src.generate import generate
from src.metrics.classifier import load_classifier
from src.run.compose import compose_config
from src.train import train
from src.train_classifier import train_classifier
from tests.conftest import PicklePayload

# 4 x width = 16-d domain features; sample counts just above what FID/KID/IS need.
SMALL = ["metrics.num_samples=40", "metrics.kid_subset_size=20", "metrics.kid_subsets=5", "metrics.is_splits=2",
         "metrics.batch_size=20"]


def write_class_patterns(data_dir: Path, n_train: int = 300, n_test: int = 100) -> None:
    """MNIST files where class k is a bright centred square of side 4 + 2k on a noisy background."""
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for image, k in zip(images, labels, strict=True):
            low, high = 12 - k, 16 + k
            image[low:high, low:high] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))


@pytest.fixture(scope="module")
def classified(tmp_path_factory) -> Path:
    """A data folder with its domain classifier trained by the CLI's own function."""
    data_dir = tmp_path_factory.mktemp("metrics") / "data"
    write_class_patterns(data_dir)
    train_classifier(compose_config("train_classifier", [
        f"paths.data_dir={data_dir}", "data.num_workers=0", "classifier.width=4", "epochs=4", "batch_size=30"]))
    return data_dir


@pytest.fixture(scope="module")
def measured_run(classified: Path) -> tuple[Path, dict[str, float]]:
    out = classified.parent / "run"
    cfg = compose_config("train", [
        "max_batches=4", "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=2",
        "report_every_n_batches=2", f"paths.data_dir={classified}", "metrics.every_n_batches=2", *SMALL,
        "model.ema_decay=0.999"], out)  # the EMA on: evaluate measures it, and the raw G with use_ema=false
    return out, train(cfg)


def test_domain_classifier_learns_the_classes(classified: Path) -> None:
    model, info = load_classifier(classified / "classifiers" / "mnist_32_1.pt")
    assert info["test_accuracy"] > 0.5  # chance is 0.1
    assert model.num_features == 16 and info["test_images"] == 100


def test_training_logs_metrics_and_keeps_the_best_checkpoint(measured_run) -> None:
    out, final = measured_run
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    fids = events.Scalars("metrics/fid_domain")
    assert [e.step for e in fids] == [2, 4]  # x-axis in batches, every metrics.every_n_batches
    assert {"metrics/kid_domain", "metrics/is_domain", "metrics/classes_covered_domain", "metrics/precision_domain",
            "metrics/recall_domain", "metrics/density_domain", "metrics/coverage_domain"} <= set(
        events.Tags()["scalars"])
    assert final["metrics/fid_domain"] == pytest.approx(fids[-1].value, rel=1e-5)
    best = torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    (state,) = [v for k, v in best["callbacks"].items() if "metrics/fid_domain" in k]
    best_fid = min(fids, key=lambda e: e.value)
    assert float(state["best_model_score"]) == pytest.approx(best_fid.value, rel=1e-5)
    assert best["global_step"] == best_fid.step  # saved right after that evaluation, in the same batch


def test_evaluate_prints_and_writes_domain_metrics_and_reuses_the_cache(measured_run, monkeypatch, capsys) -> None:
    out, _ = measured_run
    ckpt = out / "checkpoints" / "last.ckpt"
    monkeypatch.setattr("src.metrics.reference.compute_reference",
                        lambda *a, **k: pytest.fail("the real statistics were computed during training"))
    report = evaluate(compose_config("evaluate", [f"ckpt_path={ckpt}", "num_samples=40", *SMALL[1:]]))
    printed = capsys.readouterr().out
    written = json.loads((ckpt.parent / "metrics.json").read_text())
    assert written == report and report["generator"] == "EMA"
    names = [row["metric"] for row in written["rows"]]
    assert names == ["fid_domain", "kid_domain", "kid_domain_std", "is_domain", "is_domain_std",
                     "classes_covered_domain", "classes_balanced_domain", "class_kl_domain", "precision_domain",
                     "recall_domain",
                     "density_domain", "coverage_domain"]
    rows = {row["metric"]: row for row in written["rows"]}
    assert all(row["samples"] == 40 for row in written["rows"])
    assert rows["fid_domain"]["reference"] == rows["kid_domain"]["reference"] == "MNIST train (300 images)"
    assert rows["is_domain"]["reference"] == "none"  # IS looks at the samples only
    assert rows["precision_domain"]["reference"] == "MNIST train (40 of 300 images)"  # as many real as samples
    assert rows["fid_domain"]["resize"] == "real to 32x32 as in training; extractor: none"
    assert rows["is_domain"]["resize"] == "extractor: none"  # IS sees no real images
    assert all(0 <= rows[f"{name}_domain"]["value"] <= 1 for name in ("precision", "recall", "coverage"))
    assert written["protocol"].startswith("protocol: extractor domain classifier mnist_32_1.pt (test acc ")
    assert written["protocol"] in printed
    assert ("40 samples (32x32x1); reference MNIST train (300 images); resize: real images to 32x32 as in "
            "training, samples as made, extractor: none; KID on 40 samples vs 300 real") in printed
    assert "PRDC on 40 samples vs 40 real; k=3 for precision/recall, 5 for density/coverage" in printed
    assert "fid_domain" in printed and "domain classifier mnist_32_1.pt" in printed
    covered = report["rows"][5]["value"]  # classes_covered_domain: a count of MNIST's 10 classes
    assert covered == int(covered) and 0 <= covered <= 10


def test_samples_src_generate_wrote_score_as_their_checkpoint_does(measured_run, tmp_path: Path) -> None:
    """samples= applies the checkpoint's protocol to images made elsewhere: src.generate's npz of the same noise
    (seed 0, what the evaluator draws) gives the checkpoint's numbers."""
    out, _ = measured_run
    generate(compose_config("generate", [f"ckpt_path={out}", "num_samples=40", f"output_dir={tmp_path}"]))
    from_checkpoint = evaluate(compose_config("evaluate", [f"ckpt_path={out}", "num_samples=40", *SMALL[1:],
                                                           f"output={tmp_path / 'ckpt.json'}"]))
    from_samples = evaluate(compose_config("evaluate", [f"samples={tmp_path / 'samples.npz'}", "data=mnist",
                                                        f"data_dir={out.parent / 'data'}", *SMALL[1:]]))
    assert (tmp_path / "samples_metrics.json").is_file()
    assert from_samples["protocol"] == from_checkpoint["protocol"]
    values = {row["metric"]: row["value"] for row in from_checkpoint["rows"]}
    assert {row["metric"]: row["value"] for row in from_samples["rows"]} == pytest.approx(values, rel=1e-5, abs=1e-6)


def test_evaluate_on_a_read_only_run_and_dataset_keeps_its_numbers(measured_run, tmp_path: Path, monkeypatch,
                                                                    logged) -> None:
    """Nothing can be written beside the checkpoint or into the dataset folder (a read-only mount, an archive): the
    measurement still ends, without caching the real statistics, and its JSON goes to the current folder."""
    import builtins
    import errno
    import shutil

    from src.core import atomic_io

    out, _ = measured_run
    data = Path(shutil.copytree(out.parent / "data", tmp_path / "data", ignore=shutil.ignore_patterns("metrics_cache")))
    real_open = builtins.open

    def read_only_open(path, mode="r", *args, **kwargs):
        if "w" in mode and Path(path).resolve().is_relative_to(out.resolve()) or \
                Path(path).resolve().is_relative_to(data.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic_io, "open", read_only_open, raising=False)
    (here := tmp_path / "here").mkdir()
    monkeypatch.chdir(here)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    report = evaluate(compose_config("evaluate", [f"ckpt_path={out}", "num_samples=40", f"data_dir={data}",
                                                  *SMALL[1:]]))
    assert json.loads((here / "run_metrics.json").read_text()) == report
    lines = logged()
    assert f"could not write {data}/metrics_cache/" in lines and "continuing without caching the real" in lines
    assert (f"could not write {out}/metrics.json: read-only file system; no metrics.json was created and "
            f"no temp file remains: wrote {here / 'run_metrics.json'} instead (output=<file> picks the place)") in lines
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before and not list(data.glob("metrics_cache/*.pt"))


def test_evaluate_without_a_classifier_says_how_to_train_one(measured_run, tmp_path: Path) -> None:
    out, _ = measured_run
    write_class_patterns(tmp_path / "data", n_train=20, n_test=10)
    with pytest.raises(UserError, match=r"train it once with `python -m src.train_classifier data=mnist "
                                        r"model.image_size=32 data.channels=1`"):
        evaluate(compose_config("evaluate", [f"ckpt_path={out}", f"data_dir={tmp_path / 'data'}"]))


class StandInInception(nn.Module):
    """Takes torch-fidelity's constructor arguments; loads a small projection from the weights file."""

    calls: list[dict] = []

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None):
        super().__init__()
        StandInInception.calls.append({"name": name, "features": features_list,
                                       "weights": feature_extractor_weights_path})
        if feature_extractor_weights_path is None:
            raise URLError("no network")
        self.projection = torch.load(feature_extractor_weights_path, weights_only=True)["projection"]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert x.dtype == torch.uint8 and x.shape[1] == 3  # grayscale was repeated to RGB
        features = nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1) @ self.projection
        return features, features[:, :1008]


def test_inception_path_uses_the_given_weights_file(measured_run, tmp_path: Path, monkeypatch) -> None:
    out, _ = measured_run
    monkeypatch.setattr("torch_fidelity.feature_extractor_inceptionv3.FeatureExtractorInceptionV3", StandInInception)
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({"projection": torch.randn(48, 2048, generator=torch.Generator().manual_seed(0))}, weights)
    report = evaluate(compose_config("evaluate", [
        f"ckpt_path={out}", "metrics=inception", f"metrics.inception_weights={weights}", "metrics.metrics=[kid,is]",
        "num_samples=40", *SMALL[1:]]))
    assert StandInInception.calls[-1] == {"name": "inception-v3-compat", "features": ["2048", "logits_unbiased"],
                                          "weights": str(weights)}
    assert [row["metric"] for row in report["rows"]] == ["kid", "kid_std", "is", "is_std"]
    assert report["rows"][0]["extractor"].startswith("Inception-v3")
    assert any("inception-" in p.name for p in (out.parent / "data" / "metrics_cache").iterdir())

    with pytest.raises(UserError, match=r"pass metrics.inception_weights=/path/to/weights-inception-2015-12-05"):
        evaluate(compose_config("evaluate", [f"ckpt_path={out}", "metrics=inception"]))  # offline, no file
    with pytest.raises(UserError, match=r"needs more than 2048 samples .* got num_samples=1000"):
        evaluate(compose_config("evaluate", [f"ckpt_path={out}", "metrics=inception", "num_samples=1000",
                                             f"metrics.inception_weights={weights}"]))


def test_a_conditional_run_logs_and_evaluates_class_accuracy_and_intra_class_fid(classified: Path) -> None:
    """Trained 2 batches: the numbers are poor, but they are there, in range, in training logs and in evaluate."""
    out = classified.parent / "conditional"
    metrics = train(compose_config("train", [
        "max_batches=2", "data.batch_size=8", "data.num_workers=0", "sample_every_n_batches=2",
        f"paths.data_dir={classified}", "metrics.every_n_batches=2", *SMALL, "model.conditional=true",
        "trainer.log_every_n_steps=1"], out))
    assert 0 <= metrics["metrics/class_accuracy_domain"] <= 1
    assert "metrics/intra_fid_domain" not in metrics  # 40 samples: 4 per class, fewer than the 16 feature dims
    report = evaluate(compose_config("evaluate", [f"ckpt_path={out}", "num_samples=200", *SMALL[1:]]))
    values = {row["metric"]: row["value"] for row in report["rows"]}
    assert 0 <= values["class_accuracy_domain"] <= 1 and values["intra_fid_domain"] > 0  # 20 per class > 16


@pytest.mark.parametrize("kind", ["random bytes", "pickle payload"])
def test_a_classifier_file_that_is_not_one_is_one_line(tmp_path: Path, kind: str) -> None:
    path, marker = tmp_path / "mnist_32_1.pt", tmp_path / "pwned"
    if kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    else:
        torch.save({"arch": PicklePayload(marker)}, path)
    with pytest.raises(UserError, match=f"{path} is not a domain classifier file .*: delete it and run "
                                        "src.train_classifier"):
        load_classifier(path)
    assert not marker.exists()


def test_train_classifier_says_how_each_epoch_went(tmp_path: Path, logged) -> None:
    write_class_patterns(tmp_path / "data", n_train=80, n_test=20)
    train_classifier(compose_config("train_classifier", [
        f"paths.data_dir={tmp_path / 'data'}", "data.num_workers=0", "classifier.width=4", "epochs=3",
        "batch_size=20"]))
    lines = logged().splitlines()
    assert lines[0] == "[classifier] decoding the training and test images of MNIST ..."
    epochs = [line for line in lines if line.startswith("[classifier] epoch ")]
    assert [line.split(":")[0] for line in epochs] == [f"[classifier] epoch {e}/3" for e in (1, 2, 3)]
    assert all(re.fullmatch(r"\[classifier\] epoch \d/3: loss \d+\.\d{3}, test accuracy \d+\.\d\d%", e) for e in epochs)
