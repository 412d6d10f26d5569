"""The domain classifier: a small CNN trained on the dataset's own labels (python -m src.train_classifier).

Its global-average-pooled last conv layer plays Inception's pool3 (features for FID and KID) and its head plays
Inception's logits (IS, class coverage). One file per (dataset, image size, channels) under data_dir/classifiers/."""

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.core.atomic_io import atomic_save
from src.core.errors import UserError

# Below this test accuracy a domain classifier's features are too coarse to rank runs: on a 9-class icon folder a
# 39 % classifier gave colour blobs the fid_domain of good MNIST digits (3.7), a 75 % one gave them 26 (#37 item 3).
# An absolute bar, not a multiple of chance: 3x chance is only 33 % for 9 classes.
WEAK_ACCURACY = 0.80


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DomainClassifier(nn.Module):
    """conv-pool x3, conv, global average pool -> `4 * width` features -> linear head. Inputs in [-1, 1]."""

    def __init__(self, channels: int = 1, image_size: int = 32, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        if image_size < 8:
            raise UserError(f"the domain classifier needs images of at least 8x8, got {image_size}x{image_size}")
        self.arch = {"channels": channels, "image_size": image_size, "num_classes": num_classes, "width": width}
        w = width
        self.body = nn.Sequential(
            *_block(channels, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 4 * w), nn.MaxPool2d(2),
            *_block(4 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)
        self.num_features = 4 * w

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def dataset_key(name: str) -> str:
    """'CIFAR-10' -> 'cifar10': the name part of cache files."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def without_labels(datamodule) -> str:
    """What to do when a dataset has no classes to learn a domain classifier from (a flat image folder)."""
    return (f"{datamodule.command_line} has no class subfolders, so there are no labels to train a domain classifier "
            "on, and this template has no other offline measure for unlabelled images: measure with Inception-v3 "
            "(metrics=inception metrics.inception_weights=<its weights file>, see docs/quality.md), or "
            "sort the images into one subfolder per class and train one with python -m src.train_classifier "
            f"{datamodule.command_line}")


def weakness(info: dict[str, Any], num_classes: int) -> str | None:
    """Why a classifier with this stored info is too weak to rank runs with, or None when it is not."""
    accuracy = info.get("test_accuracy")
    if accuracy is None or accuracy >= WEAK_ACCURACY:
        return None
    return (f"test accuracy {accuracy:.1%} (chance {1 / num_classes:.1%}) is below {WEAK_ACCURACY:.0%}, so its "
            "*_domain numbers can rank runs wrongly")


def classifier_path(data_dir: str | Path, dataset: str, image_size: int, channels: int) -> Path:
    return Path(data_dir) / "classifiers" / f"{dataset_key(dataset)}_{image_size}_{channels}.pt"


def save_classifier(path: Path, model: DomainClassifier, info: dict[str, Any]) -> None:
    """Weights, architecture and how it was trained (test accuracy included), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save({"arch": model.arch, "state_dict": model.state_dict(), "info": info}, path)


def load_classifier(path: Path) -> tuple[DomainClassifier, dict[str, Any]]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = DomainClassifier(**payload["arch"])
        model.load_state_dict(payload["state_dict"])
    except Exception as err:  # truncated, random bytes, a pickle weights_only refuses, another kind of file
        raise UserError(
            f"{path} is not a domain classifier file ({type(err).__name__}): delete it and run src.train_classifier"
        ) from err
    return model.eval(), payload["info"]
