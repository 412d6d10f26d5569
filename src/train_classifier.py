"""Train the domain classifier: `python -m src.train_classifier data=mnist` (see conf/train_classifier.yaml).

A plain loop on the split held in memory as uint8 (seconds per epoch on MNIST), with a progress bar and a line per
epoch; the file records the test accuracy, which src.evaluate prints next to every domain metric."""

import logging
import sys
import time
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from tqdm import tqdm

from src.core.checks import require_positive, require_seed
from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.metrics.classifier import DomainClassifier, classifier_path, load_classifier, save_classifier, without_labels
from src.metrics.realdata import load_uint8, to_unit_range
from src.run.cli import refuse_unknown_keys, run_cli

log = logging.getLogger(__name__)


def fit(model: DomainClassifier, data: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
        epochs: int, batch_size: int, lr: float) -> None:
    """Adam with a one-cycle schedule; a progress bar per epoch, and a line after each with its mean loss and the
    test accuracy so far."""
    images, labels = data
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    per_epoch = max(1, len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * per_epoch)
    for epoch in range(1, epochs + 1):
        model.train()
        order, total = torch.randperm(len(images)), torch.zeros(())
        with tqdm(total=per_epoch, desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True) as bar:
            for start in range(0, len(images) - batch_size + 1, batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(model(to_unit_range(images[idx])), labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.detach()
                bar.update()
                if bar.n % 20 == 0:
                    bar.set_postfix(loss=f"{total.item() / bar.n:.3f}")
        log.info(f"[classifier] epoch {epoch}/{epochs}: loss {total.item() / per_epoch:.3f}, test accuracy "
                 f"{accuracy(model, *test):.2%}")
    model.eval()


@torch.no_grad()
def accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(to_unit_range(images[i : i + batch_size])).argmax(1) == labels[i : i + batch_size])
                      .sum()) for i in range(0, len(images), batch_size))
    return correct / len(images)


def train_classifier(cfg: DictConfig) -> Path:
    require_positive(cfg.epochs, "epochs")
    require_positive(cfg.batch_size, "batch_size", example=128)
    require_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    if datamodule.num_classes < 2:
        raise UserError(without_labels(datamodule))
    path = classifier_path(datamodule.store_dir, datamodule.name, datamodule.image_size, datamodule.channels)
    if path.is_file() and not cfg.overwrite:
        _, info = load_classifier(path)
        log.info(f"{path} exists (test accuracy {info['test_accuracy']:.2%}): pass overwrite=true to train it again")
        return path
    datamodule.prepare_data()
    workers = datamodule.num_workers
    log.info(f"[classifier] decoding the training and test images of {datamodule.name} ...")
    train_x, train_y = load_uint8(datamodule.classifier_dataset(datamodule.transform()), cfg.max_train_images,
                                  num_workers=workers)
    test_x, test_y = load_uint8(datamodule.make_dataset(datamodule.transform(), train=False), cfg.max_test_images,
                                num_workers=workers)
    if int(max(train_y.max(), test_y.max())) >= cfg.classifier.num_classes:
        raise UserError(f"{datamodule.name} has labels up to {int(train_y.max())}: raise classifier.num_classes")
    if len(train_x) < cfg.batch_size:
        raise UserError(f"{len(train_x)} training images are fewer than batch_size={cfg.batch_size}: lower it")

    torch.manual_seed(cfg.seed)
    model: DomainClassifier = instantiate(cfg.classifier)
    start = time.perf_counter()
    fit(model, (train_x, train_y), (test_x, test_y), cfg.epochs, cfg.batch_size, cfg.lr)
    test_accuracy = accuracy(model, test_x, test_y)
    seconds = time.perf_counter() - start
    save_classifier(path, model, {
        "dataset": datamodule.name, "test_accuracy": test_accuracy, "train_images": len(train_x),
        "test_images": len(test_x), "epochs": int(cfg.epochs), "train_seconds": round(seconds, 1),
    })
    log.info(f"domain classifier for {datamodule.name} {datamodule.image_size}px x{datamodule.channels}: test accuracy "
          f"{test_accuracy:.2%} on {len(test_x)} images ({len(train_x)} train images, {seconds:.0f} s) -> {path}")
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_classifier")
def main(cfg: DictConfig) -> None:
    run_cli(train_classifier, cfg)


if __name__ == "__main__":
    refuse_unknown_keys("train_classifier", sys.argv[1:])
    main()
