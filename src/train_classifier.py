"""Train the domain classifier: `python -m src.train_classifier data=mnist` (see conf/train_classifier.yaml).

A plain loop on the split held in memory as uint8 (seconds per epoch on MNIST), with a progress bar and a line per
epoch, until the held-out accuracy stops rising (`patience`, at most `epochs`); the file records that accuracy,
which src.evaluate prints next to every domain metric and warns about when it is weak (classifier.WEAK_ACCURACY)."""

import copy
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from tqdm import tqdm

from src.core.checks import require_positive, require_seed
from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.metrics.classifier import (
    DomainClassifier,
    classifier_path,
    load_classifier,
    save_classifier,
    weakness,
    without_labels,
)
from src.metrics.realdata import load_uint8, to_unit_range
from src.run.cli import refuse_unknown_keys, run_cli

log = logging.getLogger(__name__)


# An epoch counts as an improvement when the held-out accuracy rises by at least this much: MNIST's last tenths of a
# point would otherwise keep it training for little, and one image of a 200-image test split is 0.5 points.
MIN_IMPROVEMENT = 0.005


@dataclass
class Fitted:
    accuracy: float  # on the held-out (test) split, of the weights kept: the best epoch's
    best_epoch: int
    epochs_run: int
    stopped_early: bool


def fit(model: DomainClassifier, data: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
        epochs: int, patience: int | None, batch_size: int, lr: float) -> Fitted:
    """Adam until the held-out accuracy has not risen by MIN_IMPROVEMENT for `patience` epochs (None: all `epochs`),
    halving the learning rate after each epoch without a rise, at most `epochs`; the best epoch's weights are kept.
    A progress bar per epoch, and a line after each with its mean loss and the test accuracy."""
    images, labels = data
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    per_epoch = max(1, len(images) // batch_size)
    best, best_epoch, best_state, stale = -1.0, 0, None, 0
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
                total += loss.detach()
                bar.update()
                if bar.n % 20 == 0:
                    bar.set_postfix(loss=f"{total.item() / bar.n:.3f}")
        held_out = accuracy(model, *test)
        log.info(f"[classifier] epoch {epoch}/{epochs}: loss {total.item() / per_epoch:.3f}, test accuracy "
                 f"{held_out:.2%}")
        stale = 0 if held_out >= best + MIN_IMPROVEMENT else stale + 1
        if held_out > best:
            best, best_epoch, best_state = held_out, epoch, copy.deepcopy(model.state_dict())
        if patience is not None and stale >= patience:
            break
        if stale:
            for group in optimizer.param_groups:
                group["lr"] /= 2
    model.load_state_dict(best_state)
    model.eval()
    return Fitted(best, best_epoch, epoch, epoch < epochs)


@torch.no_grad()
def accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(to_unit_range(images[i : i + batch_size])).argmax(1) == labels[i : i + batch_size])
                      .sum()) for i in range(0, len(images), batch_size))
    return correct / len(images)


def train_classifier(cfg: DictConfig) -> Path:
    require_positive(cfg.epochs, "epochs")
    if cfg.patience is not None:
        require_positive(cfg.patience, "patience", example=2)
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
    if path.is_file():
        _, info = load_classifier(path)
        log.info(f"[classifier] overwrite=true: the new classifier replaces {path} (test accuracy "
                 f"{info['test_accuracy']:.2%}); *_domain numbers measured with the old one are not comparable")
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
    fitted = fit(model, (train_x, train_y), (test_x, test_y), cfg.epochs, cfg.patience, cfg.batch_size, cfg.lr)
    seconds = time.perf_counter() - start
    info = {
        "dataset": datamodule.name, "test_accuracy": fitted.accuracy, "train_images": len(train_x),
        "test_images": len(test_x), "epochs": fitted.epochs_run, "best_epoch": fitted.best_epoch,
        "train_seconds": round(seconds, 1),
    }
    save_classifier(path, model, info)
    stop = (f"no rise of {MIN_IMPROVEMENT:.1%} in {cfg.patience} epochs" if fitted.stopped_early
            else f"the epochs={cfg.epochs} cap")
    log.info(f"domain classifier for {datamodule.name} {datamodule.image_size}px x{datamodule.channels}: test accuracy "
             f"{fitted.accuracy:.2%} against chance {1 / cfg.classifier.num_classes:.2%} on {len(test_x)} images "
             f"(best of {fitted.epochs_run} epochs, stopped at {stop}; {len(train_x)} train images, {seconds:.0f} s) "
             f"-> {path}")
    if weak := weakness(info, cfg.classifier.num_classes):
        log.warning(f"[classifier] weak: {weak}: src.evaluate and training metrics will say so; more images per "
                    "class, a larger classifier.width or a higher epochs= cap may help")
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="train_classifier")
def main(cfg: DictConfig) -> None:
    run_cli(train_classifier, cfg)


if __name__ == "__main__":
    refuse_unknown_keys("train_classifier", sys.argv[1:])
    main()
