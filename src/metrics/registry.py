"""Every metric an evaluation can compute, one entry each: its name in `metrics.metrics`, the values it returns, what
it needs and how it scores. The settings, the evaluator and src.evaluate's report loop over this registry, so a new
metric is one `register(Metric(...))` here plus its name in conf/metrics/*.yaml's `metrics` list.

Values are named with the extractor's suffix (fid_domain, kid_domain_std, ...: src/metrics/settings.py)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from src.core.errors import UserError
from src.metrics.prdc import prdc
from src.metrics.scores import class_coverage, frechet_distance, inception_score, kernel_distance


@dataclass(frozen=True)
class Scoring:
    """What a metric scores from: the samples' features and logits, the real reference (src/metrics/reference.py),
    the settings and the device the extractor runs on."""

    features: torch.Tensor
    logits: torch.Tensor
    reference: Any
    settings: Any
    device: torch.device


@dataclass(frozen=True)
class Metric:
    name: str
    values: tuple[str, ...]  # the values it returns, in table order, before the extractor's suffix
    score: Callable[[Scoring], tuple[float, ...]]
    # The real images it compares with: "reference" (every image of the reference), "rows" (its cached feature rows),
    # "paired" (as many cached rows as samples) or None (none).
    real: str | None
    classes: bool = False  # needs the extractor's logits to be the dataset's classes (the domain classifier)
    # Why these counts can't give it (settings, feature dimensions, samples, smallest of samples and real rows), or
    # None; checked before sampling.
    refuses: Callable[[Any, int, int, int], str | None] = lambda settings, features, samples, smallest: None
    in_protocol: Callable[[Any], str] | None = None  # what the report's protocol line adds for it


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    METRICS[metric.name] = metric
    return metric


def check_counts(settings: Any, num_features: int, num_samples: int, num_real: int | None = None) -> None:
    """Fail before sampling (and before computing real statistics) when the counts can't give the metrics."""
    smallest = min(num_samples, num_real if num_real is not None else num_samples)
    for metric in (m for name, m in METRICS.items() if name in settings.metrics):
        reason = metric.refuses(settings, num_features, num_samples, smallest)
        if reason:
            raise UserError(reason)


def _fid_refuses(settings: Any, features: int, samples: int, smallest: int) -> str | None:
    if samples > features:
        return None
    return (f"FID on {features}-d {settings.extractor} features needs more than {features} samples (the covariance is "
            f"singular otherwise), got num_samples={samples}: use at least {features + 1}"
            + (" (10000 or more is the standard for Inception FID)" if settings.extractor == "inception" else ""))


def _prdc(s: Scoring) -> tuple[float, ...]:
    paired = min(len(s.features), len(s.reference.features))  # equal-sized sets, as the papers compare them
    found = prdc(s.reference.features[:paired].to(s.device), s.features[:paired].to(s.device),
                 s.settings.precision_recall_k, s.settings.density_coverage_k)
    return tuple(found.values())


def _prdc_refuses(settings: Any, features: int, samples: int, smallest: int) -> str | None:
    k = max(settings.precision_recall_k, settings.density_coverage_k)
    if smallest > k:
        return None
    return (f"precision/recall/density/coverage with {k} nearest neighbours need more than {k} samples and real "
            f"images, got {smallest}: use more samples (10000 is the papers' protocol)")


register(Metric(
    "fid", ("fid",), lambda s: (frechet_distance(s.reference.fid_state, s.features),), real="reference",
    refuses=_fid_refuses))
register(Metric(
    "kid", ("kid", "kid_std"), real="rows", in_protocol=lambda settings: "",
    score=lambda s: kernel_distance(s.reference.features, s.features, s.settings.kid_subsets,
                                    s.settings.kid_subset_size, s.settings.seed),
    refuses=lambda settings, features, samples, smallest: (
        f"metrics.kid_subset_size={settings.kid_subset_size} is more than the {smallest} samples or real images "
        "available: lower it or raise num_samples") if settings.kid_subset_size > smallest else None))
register(Metric(
    "is", ("is", "is_std"), real=None,
    score=lambda s: inception_score(s.logits, s.settings.is_splits, s.settings.seed),
    refuses=lambda settings, features, samples, smallest: (
        f"IS splits {samples} samples into metrics.is_splits={settings.is_splits}: use more samples")
    if samples < settings.is_splits else None))
register(Metric(
    "coverage", ("classes_covered", "classes_balanced", "class_kl"), real="reference", classes=True,
    score=lambda s: tuple(float(v) for v in class_coverage(s.logits, s.reference.class_histogram,
                                                           s.settings.coverage_min_share,
                                                           s.settings.balanced_min_share))))
register(Metric(
    "prdc", ("precision", "recall", "density", "coverage"), _prdc, real="paired", refuses=_prdc_refuses,
    in_protocol=lambda settings: (f"k={settings.precision_recall_k} for precision/recall, "
                                  f"{settings.density_coverage_k} for density/coverage")))
