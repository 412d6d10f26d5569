"""Sample a generator (or take given images), extract features once, score them against the cached real
statistics."""

from collections.abc import Iterable

import torch
from torch import nn

from src.core.errors import UserError
from src.gan.sampling import sample_in_batches
from src.metrics.extractors import FeatureExtractor, load_extractor
from src.metrics.reference import RealReference, load_reference
from src.metrics.registry import METRICS, Scoring, check_counts
from src.metrics.scores import frechet_distance
from src.metrics.settings import MetricSettings
from src.networks.conditional import ConditionalGenerator


def check_sample_count(settings: MetricSettings, num_features: int, num_samples: int,
                       num_real: int | None = None) -> None:
    """Fail before sampling (and before computing real statistics) when the counts can't give the metrics."""
    check_counts(settings, num_features, num_samples, num_real)


class Evaluator:
    def __init__(self, settings: MetricSettings, extractor: FeatureExtractor, reference: RealReference,
                 device: torch.device | str = "cpu") -> None:
        self.settings, self.reference, self.device = settings, reference, torch.device(device)
        self.extractor = extractor.to(self.device).eval()
        check_sample_count(settings, extractor.num_features, settings.num_samples, len(reference.features))
        if "fid" in settings.metrics and reference.num_images <= extractor.num_features:
            raise UserError(
                f"the real reference has {reference.num_images} images: FID on {extractor.num_features}-d features "
                f"needs more than {extractor.num_features} (raise metrics.num_real, or use a larger split)"
            )

    @torch.no_grad()
    def features(self, batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of uint8 image batches, on the CPU."""
        pairs = [tuple(t.cpu() for t in self.extractor(images.to(self.device))) for images in batches]
        return torch.cat([f for f, _ in pairs]), torch.cat([lg for _, lg in pairs])

    def score_images(self, batches: Iterable[torch.Tensor], labels: torch.Tensor | None = None) -> dict[str, float]:
        """Metrics of uint8 image batches; `labels`: the class each image was asked for (conditional generators)."""
        features, logits = self.features(batches)
        values = self.score(features, logits)
        if labels is None:
            return values
        return values | class_scores(self.settings, self.reference.class_fid_states, features, logits, labels)

    def evaluate_images(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """Metrics of images made elsewhere (uint8, N x C x H x W, the size and channels of the reference)."""
        check_sample_count(self.settings, self.extractor.num_features, len(images), len(self.reference.features))
        return self.score_images(images.split(self.settings.batch_size), labels)

    def evaluate(self, generator: nn.Module, z_dim: int, num_samples: int | None = None) -> dict[str, float]:
        """Metrics of `num_samples` samples (default: settings.num_samples), from noise seeded by settings.seed."""
        n = num_samples or self.settings.num_samples
        check_sample_count(self.settings, self.extractor.num_features, n, len(self.reference.features))
        device = next(generator.parameters()).device
        labels = generator.proportional_labels(n, torch.device("cpu")) if isinstance(
            generator, ConditionalGenerator) else None
        return self.score_images(sample_in_batches(generator, n, z_dim, self.settings.batch_size, device,
                                                   self.settings.seed, labels), labels)

    def score(self, features: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
        scoring = Scoring(features, logits, self.reference, self.settings, self.device)
        chosen = self.settings.names_by_metric()
        return {name: float(value) for metric in METRICS if metric in chosen  # in the registry's order
                for name, value in zip(chosen[metric], METRICS[metric].score(scoring), strict=True)}

    def sizes(self, num_samples: int) -> dict[str, tuple[int, int | None]]:
        """(samples, real images) behind each value of an evaluation of num_samples: FID and class coverage use
        every image of the reference, KID its cached real rows, PRDC as many real rows as samples (at most the
        cached rows), IS and class accuracy no real image."""
        ref, rows = self.reference, len(self.reference.features)
        paired = min(num_samples, rows)
        by_real = {"reference": (num_samples, ref.num_images), "rows": (num_samples, rows), None: (num_samples, None),
                   "paired": (paired, paired)}
        sizes = {name: by_real[METRICS[metric].real] for metric, names in self.settings.names_by_metric().items()
                 for name in names}
        suffix = self.settings.suffix
        return sizes | {f"class_accuracy{suffix}": (num_samples, None),
                        f"intra_fid{suffix}": (num_samples, ref.num_images)}


def class_scores(settings: MetricSettings, class_fid_states: dict | None, features: torch.Tensor,
                 logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """A conditional G's samples, each asked for a class (labels): how often the domain classifier sees that class
    (class_accuracy), and the mean over classes of FID against that class's real images (intra_fid, when every
    class has more samples than feature dimensions)."""
    values: dict[str, float] = {}
    if "coverage" in settings.metrics:  # the extractor's logits are the dataset's classes
        values[f"class_accuracy{settings.suffix}"] = float((logits.argmax(dim=1) == labels).double().mean())
    classes = labels.unique().tolist()
    enough = all(int((labels == c).sum()) > features.size(1) for c in classes)
    if "fid" in settings.metrics and class_fid_states and enough and all(c in class_fid_states for c in classes):
        per_class = [frechet_distance(class_fid_states[c], features[labels == c]) for c in classes]
        values[f"intra_fid{settings.suffix}"] = sum(per_class) / len(per_class)
    return values


def build_evaluator(settings: MetricSettings, datamodule, device: torch.device | str = "cpu") -> Evaluator:
    """Load the extractor and the real statistics (computing and caching them the first time)."""
    extractor = load_extractor(settings, datamodule).to(device).eval()
    check_sample_count(settings, extractor.num_features, settings.num_samples)
    return Evaluator(settings, extractor, load_reference(datamodule, settings, extractor, torch.device(device)),
                     device)
