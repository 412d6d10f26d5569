"""Feature extractors: uint8 images in, (features, logits) out, one pass per image for every metric.

- inception: torch-fidelity's Inception-v3 ("inception-v3-compat", the TF-ported weights every FID paper uses):
  2048-d pool3 features and the 1008 unbiased logits. Its forward resizes to 299 with the TF1-style bilinear
  interpolation and no antialias, which is what torchmetrics' `antialias=False` selects.
- domain: the dataset's own classifier (classifier.py); its metrics are named *_domain."""

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

from src.core.commands import command
from src.core.errors import UserError
from src.metrics.classifier import classifier_path, load_classifier, weakness, without_labels
from src.metrics.realdata import to_unit_range
from src.metrics.settings import MetricSettings

log = logging.getLogger(__name__)

# torch-fidelity's own download address (its module takes seconds to import, so it is imported when needed).
URL_INCEPTION_V3 = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


def file_digest(path: Path, length: int = 10) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


class FeatureExtractor(nn.Module):
    kind: str
    num_features: int
    num_classes: int
    cache_id: str  # which extractor made a cached real statistic: changes when the weights change
    description: str
    resize: str  # what the extractor does to the image size, for the printed protocol

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class DomainExtractor(FeatureExtractor):
    kind = "domain"
    resize = "none"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.classifier, self.info = load_classifier(path)
        self.num_features = self.classifier.num_features
        self.num_classes = self.classifier.arch["num_classes"]
        self.cache_id = f"domain-{file_digest(path)}"
        accuracy = self.info.get("test_accuracy")
        self.description = f"domain classifier {path.name}" + (f" (test acc {accuracy:.1%})" if accuracy else "")

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier.features_and_logits(to_unit_range(images))


class InceptionExtractor(FeatureExtractor):
    kind = "inception"
    num_features, num_classes = 2048, 1008
    resize = "both to 299x299 (TF1 bilinear, no antialias)"

    def __init__(self, weights: str | None) -> None:
        super().__init__()
        from torch_fidelity import feature_extractor_inceptionv3 as fidelity

        if weights is not None and not Path(weights).is_file():
            raise UserError(f"metrics.inception_weights={weights} does not exist: {how_to_get_inception_weights()}")
        try:
            self.net = fidelity.FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=weights
            )
        except Exception as err:  # offline download (URLError), unreadable or foreign file: all fixed the same way
            raise UserError(f"Inception-v3 weights did not load ({type(err).__name__}: {err}): "
                            f"{how_to_get_inception_weights()}") from err
        self.cache_id = f"inception-{file_digest(Path(weights))}" if weights else "inception-torchfidelity"
        self.description = "Inception-v3 (torch-fidelity, pool3 2048-d)"

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)  # grayscale -> RGB, as the standard protocol does
        features, logits = self.net(images)
        return features, logits


def how_to_get_inception_weights() -> str:
    name = URL_INCEPTION_V3.rsplit("/", 1)[-1]
    return (
        f"download {URL_INCEPTION_V3} on a machine with network, copy it here and pass "
        f"metrics.inception_weights=/path/to/{name} (or drop it into ~/.cache/torch/hub/checkpoints/); "
        "offline without it, use metrics=domain"
    )


def load_extractor(settings: MetricSettings, datamodule) -> FeatureExtractor:
    if settings.extractor == "inception":
        return InceptionExtractor(settings.inception_weights)
    size, channels = datamodule.image_size, datamodule.channels
    path = classifier_path(datamodule.store_dir, datamodule.name, size, channels)
    if not path.is_file() and datamodule.num_classes < 2:
        raise UserError(without_labels(datamodule))
    if not path.is_file():
        raise UserError(
            f"no domain classifier for {datamodule.name} at {size}x{size}x{channels} ({path}): train it once with "
            f"`{command('src.train_classifier', datamodule.command_line, f'model.image_size={size}')} "
            f"{datamodule.channels_command}` (or measure with Inception: metrics=inception)"
        )
    extractor = DomainExtractor(path)
    arch = extractor.classifier.arch
    if (arch["image_size"], arch["channels"]) != (size, channels):
        raise UserError(f"{path} was trained on {arch['image_size']}px x{arch['channels']} images, not "
                        f"{size}px x{channels}: retrain it with src.train_classifier overwrite=true")
    if weak := weakness(extractor.info, extractor.num_classes):
        retrain = command("src.train_classifier", datamodule.command_line, f"model.image_size={size}",
                          *datamodule.channels_command.split(), "overwrite=true")
        log.warning(f"[metrics] weak domain classifier {path}: {weak}; retrain it (it stops when its accuracy stops "
                    f"improving, at most epochs=N): {retrain}")
    return extractor
