"""The domain classifier trains until its held-out accuracy stops rising, says how it compares with chance, and a
weak one is named in one line wherever its numbers are used (#37 item 3)."""

import re
from pathlib import Path

import pytest

from src.evaluate import evaluate
from src.metrics.classifier import WEAK_ACCURACY, load_classifier, save_classifier
from src.run.compose import compose_config
from src.train import train
from src.train_classifier import train_classifier
from tests.test_metrics_pipeline import SMALL, write_class_patterns

CLASSIFIER = ["data.num_workers=0", "classifier.width=4", "batch_size=20"]


def test_training_stops_when_the_held_out_accuracy_stops_rising(tmp_path: Path, logged) -> None:
    write_class_patterns(tmp_path / "data", n_train=100, n_test=40)
    path = train_classifier(compose_config("train_classifier", [f"paths.data_dir={tmp_path / 'data'}", *CLASSIFIER,
                                                                "epochs=40", "patience=2"]))
    _, info = load_classifier(path)
    lines = logged().splitlines()
    epochs = [line for line in lines if line.startswith("[classifier] epoch ")]
    assert len(epochs) == info["epochs"] < 40  # stopped before the cap ...
    assert info["epochs"] - info["best_epoch"] >= 2  # ... after two epochs without a rise, keeping the best one
    best = max(float(re.search(r"test accuracy (\d+\.\d+)%", line).group(1)) for line in epochs)
    assert info["test_accuracy"] == pytest.approx(best / 100, abs=1e-4)
    closing = next(line for line in lines if line.startswith("domain classifier for MNIST"))
    assert f"test accuracy {best:.2f}% against chance 10.00% on 40 images" in closing
    assert f"best of {info['epochs']} epochs, stopped at no rise of 0.5% in 2 epochs" in closing

    train_classifier(compose_config("train_classifier", [f"paths.data_dir={tmp_path / 'data'}", *CLASSIFIER,
                                                         "epochs=1", "overwrite=true"]))
    (replaced,) = [line for line in logged().splitlines() if "overwrite=true" in line]
    assert replaced == (f"[classifier] overwrite=true: the new classifier replaces {path} (test accuracy {best:.2f}%); "
                        "*_domain numbers measured with the old one are not comparable")
    assert load_classifier(path)[1]["epochs"] == 1  # epochs= still caps it


def with_stored_accuracy(path: Path, accuracy: float) -> None:
    model, info = load_classifier(path)
    save_classifier(path, model, info | {"test_accuracy": accuracy})


def test_evaluate_and_training_metrics_say_when_the_classifier_is_weak(tmp_path: Path, logged) -> None:
    data_dir = tmp_path / "data"
    write_class_patterns(data_dir)
    path = train_classifier(compose_config("train_classifier", [f"paths.data_dir={data_dir}", *CLASSIFIER,
                                                                "epochs=1"]))
    run = tmp_path / "run"
    with_stored_accuracy(path, 0.39)
    logged()
    train(compose_config("train", ["max_batches=2", "data.batch_size=8", "data.num_workers=0",
                                   f"paths.data_dir={data_dir}", "metrics.every_n_batches=2", *SMALL], run))
    warned = [line for line in logged().splitlines() if "weak domain classifier" in line]
    assert warned == [f"[metrics] weak domain classifier {path}: test accuracy 39.0% (chance 10.0%) is below "
                      f"{WEAK_ACCURACY:.0%}, so its *_domain numbers can rank runs wrongly; retrain it (it stops when "
                      "its accuracy stops improving, at most epochs=N): " + warned[0].split("at most epochs=N): ")[1]]
    assert "src.train_classifier data=mnist model.image_size=32" in warned[0] and warned[0].endswith("overwrite=true")

    evaluate(compose_config("evaluate", [f"ckpt_path={run}", "num_samples=40", *SMALL[1:]]))
    assert [line for line in logged().splitlines() if "weak domain classifier" in line] == warned

    with_stored_accuracy(path, WEAK_ACCURACY)
    evaluate(compose_config("evaluate", [f"ckpt_path={run}", "num_samples=40", *SMALL[1:]]))
    assert "weak" not in logged()
