"""Real statistics, computed once per (dataset, split, resolution, extractor) and cached on disk (by one process
at a time: others starting together wait for it and read its file, src/data/lock.py).

The cache holds the FID state (feature sum and outer-product sum in float64), up to REAL_FEATURE_ROWS real
feature rows for KID and precision/recall/density/coverage (the first rows of a seeded random order of the split)
and the histogram of predicted classes."""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from src.core.atomic_io import WriteFailed, atomic_save
from src.data.lock import exclusive
from src.metrics.classifier import dataset_key
from src.metrics.extractors import FeatureExtractor
from src.metrics.realdata import split_dataset, uint8_batches
from src.metrics.scores import fid_metric
from src.metrics.settings import MetricSettings

# 10k: what the precision/recall and density/coverage papers compare against 10k samples; KID subsets draw from it.
REAL_FEATURE_ROWS = 10_000

log = logging.getLogger(__name__)


@dataclass
class RealReference:
    fid_state: dict[str, torch.Tensor]
    features: torch.Tensor  # up to REAL_FEATURE_ROWS real feature rows (KID, PRDC)
    class_histogram: torch.Tensor
    num_images: int
    path: Path
    # Domain features only: the FID state of each class's real images (intra-class FID of conditional GANs).
    class_fid_states: dict[int, dict[str, torch.Tensor]] | None = None


def reference_path(datamodule, settings: MetricSettings, extractor: FeatureExtractor) -> Path:
    size, channels = datamodule.image_size, datamodule.channels
    count = settings.num_real or "all"
    name = f"{dataset_key(datamodule.name)}_{settings.split}_{size}px{channels}ch_{extractor.cache_id}_{count}.pt"
    return Path(datamodule.store_dir) / "metrics_cache" / name


def _read(path: Path, say: bool) -> RealReference | None:
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if "kid_features" in payload:  # the name in caches written before PRDC: the same rows
            payload["features"] = payload.pop("kid_features")
        return RealReference(**payload, path=path)
    except Exception as err:  # truncated or from another version: compute it again
        if say:
            log.info(f"[metrics] ignoring unreadable cache {path} ({type(err).__name__})")
        return None


def load_reference(datamodule, settings: MetricSettings, extractor: FeatureExtractor,
                   device: torch.device) -> RealReference:
    path = reference_path(datamodule, settings, extractor)
    if (reference := _read(path, say=False)) is not None and _complete(reference, extractor):
        return reference
    with exclusive(path.with_name(f".{path.name}.lock"), f"the real statistics {path.name}"):
        if (reference := _read(path, say=True)) is not None and _complete(reference, extractor):
            return reference  # made by another process while we waited
        reference = compute_reference(datamodule, settings, extractor, device, path)
        try:
            atomic_save({k: v for k, v in vars(reference).items() if k != "path"}, path)
        except WriteFailed as err:  # a read-only dataset folder: measure anyway, compute them again next time
            log.warning(f"[metrics] {err.what}: continuing without caching the real statistics")
    return reference


def _per_class(extractor: FeatureExtractor) -> bool:
    """Per-class statistics are kept for the domain classifier's small features (10 x 64 x 64 numbers); Inception's
    would be 10 x 2048 x 2048 doubles (over 300 MB) in every cache file."""
    return extractor.kind == "domain"


def _complete(reference: RealReference, extractor: FeatureExtractor) -> bool:
    """A cache from before the per-class statistics is computed again once."""
    return reference.class_fid_states is not None or not _per_class(extractor)


@torch.no_grad()
def compute_reference(datamodule, settings: MetricSettings, extractor: FeatureExtractor, device: torch.device,
                      path: Path) -> RealReference:
    dataset = split_dataset(datamodule, settings.split)
    count = min(settings.num_real or len(dataset), len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:count].tolist()
    log.info(f"[metrics] real statistics of {datamodule.name} {settings.split} ({count} images, {extractor.kind} "
          f"features): computing them once, to be cached at {path}")
    fid = fid_metric(extractor.num_features)
    rows: list[torch.Tensor] = []
    histogram = torch.zeros(extractor.num_classes, dtype=torch.long)
    class_fids = {}
    kept = 0
    for images, labels in uint8_batches(dataset, settings.batch_size, getattr(datamodule, "num_workers", 0), order):
        features, logits = (t.cpu() for t in extractor(images.to(device)))
        fid.update(features.double(), real=True)
        for label in labels.unique().tolist() if _per_class(extractor) else []:
            metric = class_fids.setdefault(label, fid_metric(extractor.num_features))
            metric.update(features[labels == label].double(), real=True)
        if kept < REAL_FEATURE_ROWS:
            rows.append(features[: REAL_FEATURE_ROWS - kept].float())
            kept += len(rows[-1])
        histogram += torch.bincount(logits.argmax(dim=1), minlength=extractor.num_classes)
    class_states = {label: dict(m.metric_state) for label, m in sorted(class_fids.items())}
    return RealReference(dict(fid.metric_state), torch.cat(rows), histogram, count, path,
                         class_states if _per_class(extractor) else None)
