"""What to measure and how: one object per `conf/metrics/*.yaml`, shared by the training callback and the CLI. The
metrics themselves are src/metrics/registry.py's entries."""

from collections.abc import Sequence
from dataclasses import dataclass

from src.core.checks import require_positive
from src.core.errors import UserError
from src.metrics.registry import METRICS as REGISTRY

EXTRACTORS = ("domain", "inception")
METRICS = tuple(REGISTRY)  # every registered metric, the default selection


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
        if unknown := [m for m in self.metrics if m not in REGISTRY]:
            raise UserError(f"metrics.metrics may only list {tuple(REGISTRY)}, got {unknown}")
        for name in self.metrics:
            if REGISTRY[name].classes and self.extractor != "domain":
                raise UserError(f"metrics.metrics: {name} needs the dataset's classes: use metrics=domain, or drop it")
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
        return {name: [self.named(value) for value in REGISTRY[name].values] for name in self.metrics}

    def named(self, value: str) -> str:
        """A value's name with the extractor's suffix: kid_std -> kid_domain_std."""
        base, std = value.removesuffix("_std"), value.endswith("_std")
        return f"{base}{self.suffix}" + ("_std" if std else "")

    def names(self) -> list[str]:
        """Every value an evaluation returns, in table order."""
        return [name for names in self.names_by_metric().values() for name in names]
