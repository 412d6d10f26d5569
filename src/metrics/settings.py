"""What to measure and how: one object per `conf/metrics/*.yaml`, shared by the training callback and the CLI."""

from collections.abc import Sequence
from dataclasses import dataclass

from src.core.checks import require_positive
from src.core.errors import UserError

EXTRACTORS = ("domain", "inception")
# coverage: the classes the samples cover (domain classifier); prdc: precision, recall, density and coverage on
# k-NN balls of the features (src/metrics/prdc.py).
METRICS = ("fid", "kid", "is", "coverage", "prdc")


@dataclass
class MetricSettings:
    extractor: str = "domain"
    metrics: Sequence[str] = METRICS
    num_samples: int = 2000
    split: str = "train"
    num_real: int | None = None
    batch_size: int = 250
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    precision_recall_k: int = 3
    density_coverage_k: int = 5
    coverage_min_share: float = 0.1
    balanced_min_share: float = 0.5
    inception_weights: str | None = None
    seed: int = 0
    every_n_batches: int = 0
    monitor: str = "fid_domain"
    mode: str = "min"

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)
        if self.extractor not in EXTRACTORS:
            raise UserError(f"metrics.extractor must be one of {EXTRACTORS}, got {self.extractor!r}")
        if unknown := [m for m in self.metrics if m not in METRICS]:
            raise UserError(f"metrics.metrics may only list {METRICS}, got {unknown}")
        if "coverage" in self.metrics and self.extractor != "domain":
            raise UserError("metrics.metrics: coverage needs the dataset's classes: use metrics=domain, or drop it")
        if self.split not in ("train", "test"):
            raise UserError(f"metrics.split must be train or test, got {self.split!r}")
        if self.mode not in ("min", "max"):
            raise UserError(f"metrics.mode must be min or max, got {self.mode!r}")
        for key in ("num_samples", "batch_size", "kid_subsets", "kid_subset_size", "is_splits"):
            require_positive(getattr(self, key), f"metrics.{key}")
        require_positive(self.precision_recall_k, "metrics.precision_recall_k", 3)
        require_positive(self.density_coverage_k, "metrics.density_coverage_k", 5)
        if self.num_real is not None:  # null: the whole split
            require_positive(self.num_real, "metrics.num_real")
        if self.every_n_batches < 0:
            raise UserError(f"metrics.every_n_batches must be 0 (off) or positive, got {self.every_n_batches}")

    @property
    def suffix(self) -> str:
        """Domain-extractor metrics are named fid_domain, kid_domain, ...: never confused with Inception's."""
        return "" if self.extractor == "inception" else f"_{self.extractor}"

    def names_by_metric(self) -> dict[str, list[str]]:
        """The values each selected metric returns, in table order."""
        s = self.suffix
        per_metric = {
            "fid": [f"fid{s}"],
            "kid": [f"kid{s}", f"kid{s}_std"],
            "is": [f"is{s}", f"is{s}_std"],
            "coverage": [f"classes_covered{s}", f"classes_balanced{s}", f"class_kl{s}"],
            "prdc": [f"precision{s}", f"recall{s}", f"density{s}", f"coverage{s}"],
        }
        return {metric: per_metric[metric] for metric in self.metrics}

    def names(self) -> list[str]:
        """Every value an evaluation returns, in table order."""
        return [name for names in self.names_by_metric().values() for name in names]
