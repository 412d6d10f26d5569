"""Quality metrics on one's own image folder: a folder with class subfolders gets a domain classifier (tested on a
held-out share of each class, stored outside the user's images); a folder without labels is told what exists."""

import json
from pathlib import Path

import pytest
import torch

from src.data.folder import FolderDataModule, held_out, store_dir
from src.data.synthetic import write_image_folder
from tests.conftest import run_cli


def folder(path: Path, **settings) -> FolderDataModule:
    return FolderDataModule(str(path), image_size=16, channels=3, batch_size=4, num_workers=0, **settings)


def test_the_test_split_is_a_share_of_each_class_and_the_classifier_never_learns_from_it(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "b").mkdir(exist_ok=True)
        (tmp_path / ("a" if i < 15 else "b") / f"{i:02d}.png").touch()
    files = sorted(tmp_path.rglob("*.png"))
    test = held_out(tmp_path, files, 0.2)
    assert sorted(p.name for p in test) == ["02.png", "07.png", "12.png", "17.png"]  # 3 of 15, 1 of 5: evenly spread
    assert held_out(tmp_path, files, 0.2) == test and not held_out(tmp_path, files, 0.0)

    write_image_folder(tmp_path / "images", per_class=10)
    data = folder(tmp_path / "images")
    test_files, learnt = set(data.make_dataset(None, train=False).files), set(data.classifier_dataset(None).files)
    trained = set(data.make_dataset(None, train=True).files)
    assert len(test_files) == 2 and not test_files & learnt and test_files | learnt == trained  # GAN: every image
    with pytest.raises(Exception, match="data.test_share must be at least 0 and below 1"):
        folder(tmp_path / "images", test_share=1.0)


@pytest.mark.slow  # starts a process
def test_train_classifier_on_a_folder_with_classes(tmp_path: Path) -> None:
    images = write_image_folder(tmp_path / "images", per_class=10)
    done = run_cli("src.train_classifier", "data=folder", f"data.path={images}", f"paths.data_dir={tmp_path / 'data'}",
                   "model=dcgan28", "epochs=1", "batch_size=4", "classifier.width=4", "data.num_workers=0")
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = (Path(store_dir(str(tmp_path / "data"), str(images))) / "classifiers").glob("*.pt")
    info = torch.load(path, weights_only=True)["info"]
    assert (info["train_images"], info["test_images"]) == (19, 2)  # 2 classes of 10 + one loose image, 1 + 1 held out
    assert f"-> {path}" in done.stdout and not list(images.rglob("*.pt"))  # nothing written among the user's images


@pytest.mark.slow  # starts a process
def test_a_folder_without_classes_is_told_what_measure_exists(tmp_path: Path) -> None:
    images = tmp_path / "flat"
    images.mkdir()
    write_image_folder(tmp_path / "nested", per_class=4)
    for i, path in enumerate(sorted((tmp_path / "nested" / "cats").iterdir())):
        path.rename(images / f"{i}{path.suffix}")
    done = run_cli("src.train_classifier", "data=folder", f"data.path={images}", f"paths.data_dir={tmp_path / 'data'}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"Error: data=folder data.path={images} has no class subfolders") \
        and "metrics=inception" in done.stderr
    # a GAN trained on it: src.evaluate says the same, not "train a classifier" (which the command above refuses)
    trained = run_cli("src.train", "model=mlp_gan", "model.generator.width=8", "data=folder", f"data.path={images}",
                      f"paths.data_dir={tmp_path / 'data'}", "data.batch_size=2", "data.num_workers=0",
                      "max_batches=1", "~callbacks.progress_bar", f"hydra.run.dir={tmp_path / 'run'}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    measured = run_cli("src.evaluate", f"ckpt_path={tmp_path / 'run'}", "num_samples=100")
    assert measured.returncode == 2 and measured.stderr == done.stderr, measured.stderr


@pytest.mark.slow  # starts a process
def test_a_gan_on_a_folder_is_measured_in_training_and_by_evaluate(tmp_path: Path) -> None:
    """The whole path a user takes with their own images: classifier, a run with metrics on, src.evaluate."""
    images = write_image_folder(tmp_path / "images", per_class=24)
    data = [f"data.path={images}", f"paths.data_dir={tmp_path / 'data'}", "data.num_workers=0"]
    done = run_cli("src.train_classifier", "data=folder", *data, "model=dcgan28", "epochs=1", "batch_size=8",
                   "classifier.width=4")
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "run"
    small = ["metrics.num_samples=20", "metrics.kid_subset_size=10", "metrics.kid_subsets=2", "metrics.is_splits=2",
             "metrics.batch_size=10"]
    done = run_cli("src.train", "data=folder", *data, "model=dcgan28", "model.generator.width=8", "max_batches=2",
                   "data.batch_size=8", "metrics.every_n_batches=2", *small, f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / "data").rename(tmp_path / "moved")  # classifier and statistics moved: data_dir= says where
    done = run_cli("src.evaluate", f"ckpt_path={run}", "num_samples=20", *small[1:], f"data_dir={tmp_path / 'moved'}")
    assert done.returncode == 0, done.stderr[-2000:]
    names = {row["metric"] for row in json.loads((run / "metrics.json").read_text())["rows"]}
    assert {"fid_domain", "precision_domain", "classes_covered_domain"} <= names


@pytest.mark.slow  # starts a process
def test_the_suggested_classifier_command_pastes_for_a_folder_with_spaces(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT, child_env

    images = write_image_folder(tmp_path / "my images, 2026", per_class=12)  # Hydra quotes it, so must we
    run = tmp_path / "run"
    trained = run_cli("src.train", "model=mlp_gan", "model.generator.width=8", "data=folder", f"data.path='{images}'",
                      f"paths.data_dir={tmp_path / 'data'}", "data.batch_size=4", "data.num_workers=0",
                      "max_batches=1", "~callbacks.progress_bar", f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-2000:]
    refused = run_cli("src.evaluate", f"ckpt_path={run}", "num_samples=100")
    suggested = re.search(r"`(python -m src\.train_classifier [^`]+)`", refused.stderr).group(1)
    pasted = subprocess.run(f"{sys.executable} -m {suggested.removeprefix('python -m ')} "
                            f"paths.data_dir='{tmp_path / 'data'}' epochs=1 batch_size=4 classifier.width=4 "
                            "data.num_workers=0", shell=True, executable="/bin/bash", cwd=ROOT, env=child_env(),
                            capture_output=True, text=True, timeout=300)
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    assert "domain classifier for image folder 28px x3" in pasted.stdout
