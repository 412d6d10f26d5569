"""FID, KID, IS and class coverage give the known values on known feature sets, and impossible settings are one
clear error."""

import math

import pytest
import torch
from torch import nn

from src.core.errors import UserError
from src.metrics import prdc as prdc_module
from src.metrics.evaluator import Evaluator
from src.metrics.extractors import FeatureExtractor
from src.metrics.reference import RealReference, _read
from src.metrics.registry import METRICS, Metric
from src.metrics.scores import class_coverage, fid_metric, frechet_distance, inception_score, kernel_distance
from src.metrics.settings import MetricSettings

DIM = 8


def gaussian(n: int, seed: int, dim: int = DIM) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def fid_state(real: torch.Tensor) -> dict[str, torch.Tensor]:
    fid = fid_metric(real.shape[1])
    fid.update(real, real=True)
    return dict(fid.metric_state)


def test_fid_of_a_set_against_itself_is_zero_and_a_shift_costs_its_squared_length() -> None:
    real = gaussian(3000, 0)
    assert abs(frechet_distance(fid_state(real), real)) < 1e-6
    shift = torch.full((DIM,), 0.5, dtype=torch.float64)
    # Same covariance, means apart by `shift`: FID is exactly |shift|^2 = 8 * 0.25.
    assert frechet_distance(fid_state(real), real + shift) == pytest.approx(2.0, rel=1e-6)


def test_fid_grows_with_a_different_spread() -> None:
    real = gaussian(3000, 0)
    # Covariance 4I against I: trace(I + 4I - 2 * 2I) = DIM per unit, up to sampling noise.
    assert frechet_distance(fid_state(real), 2 * gaussian(3000, 1)) == pytest.approx(DIM, rel=0.1)


def test_kid_is_unbiased_around_zero_for_one_distribution() -> None:
    estimates = [kernel_distance(gaussian(400, 2 * s), gaussian(400, 2 * s + 1), subsets=10, subset_size=200,
                                 seed=s)[0] for s in range(6)]
    shifted, _ = kernel_distance(gaussian(400, 0), gaussian(400, 1) + 0.5, subsets=10, subset_size=200, seed=0)
    spread = max(abs(e) for e in estimates)
    assert min(estimates) < 0 < max(estimates)  # a biased (V-statistic) estimator would stay above zero
    assert spread < 0.05 * shifted


def test_is_is_one_for_one_class_and_the_class_count_for_confident_uniform_classes() -> None:
    one_class = torch.zeros(500, 10)
    one_class[:, 3] = 20
    assert inception_score(one_class, splits=5, seed=0)[0] == pytest.approx(1.0, abs=1e-6)
    confident = torch.nn.functional.one_hot(torch.arange(500) % 10, 10).double() * 40
    assert inception_score(confident, splits=1, seed=0)[0] == pytest.approx(10.0, rel=1e-6)  # one split: exact


def test_class_coverage_counts_classes_and_measures_kl_to_the_real_histogram() -> None:
    logits = torch.nn.functional.one_hot(torch.arange(300) % 3, 10).double()  # classes 0, 1, 2 only
    covered, balanced, kl = class_coverage(logits, torch.full((10,), 100), min_share=0.1)
    assert covered == balanced == 3 and kl == pytest.approx(math.log(10 / 3))
    all_classes = torch.nn.functional.one_hot(torch.arange(1000) % 10, 10).double()
    assert class_coverage(all_classes, torch.full((10,), 7), min_share=0.1) == (10, 10,
                                                                               pytest.approx(0.0, abs=1e-12))


def test_a_class_at_a_fifth_of_its_share_is_covered_but_not_balanced() -> None:
    # Real: 10 equal classes. Samples: class 0 at 2% (a fifth of its 10%), class 1 at 6%, the rest share 92%.
    counts = torch.tensor([20, 60] + [115] * 8)
    logits = torch.nn.functional.one_hot(torch.arange(10).repeat_interleave(counts), 10).double()
    covered, balanced, _ = class_coverage(logits, torch.full((10,), 50), min_share=0.1, balanced_share=0.5)
    assert (covered, balanced) == (10, 9)
    assert class_coverage(logits, torch.full((10,), 50), min_share=0.1, balanced_share=0.7)[1] == 8


class MeanPoolExtractor(FeatureExtractor):
    """A tiny stand-in: 4x4 average pooling as features, the first 10 of them as logits."""

    kind, num_features, num_classes, cache_id, description = "domain", 16, 10, "test", "4x4 mean pool"

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        return features, features[:, :10] * 50


def uint8_images(n: int, seed: int, brightness: int = 0) -> torch.Tensor:
    noise = torch.randint(0, 200, (n, 1, 16, 16), generator=torch.Generator().manual_seed(seed))
    return (noise + brightness).clamp(0, 255).to(torch.uint8)


def evaluator_for(real: torch.Tensor, **settings) -> Evaluator:
    extractor = MeanPoolExtractor()
    features, logits = extractor(real)
    histogram = torch.bincount(logits.argmax(1), minlength=10)
    reference = RealReference(fid_state(features.double()), features, histogram, len(real), path=None)
    defaults = {"num_samples": 400, "kid_subset_size": 200, "kid_subsets": 5, "is_splits": 4}
    return Evaluator(MetricSettings(**(defaults | settings)), extractor, reference)


def test_images_through_an_extractor_get_domain_names_and_sensible_values() -> None:
    evaluator = evaluator_for(uint8_images(400, 0))
    same = evaluator.score_images([uint8_images(400, 1)])
    brighter = evaluator.score_images([uint8_images(400, 1, brightness=40)])
    assert list(same) == MetricSettings().names() == [
        "fid_domain", "kid_domain", "kid_domain_std", "is_domain", "is_domain_std", "classes_covered_domain",
        "classes_balanced_domain", "class_kl_domain", "precision_domain", "recall_domain", "density_domain",
        "coverage_domain"]
    assert same["fid_domain"] < 0.1 * brighter["fid_domain"]
    assert same["kid_domain"] < 0.1 * brighter["kid_domain"]
    assert same["coverage_domain"] > 0.8 > 0.2 > brighter["coverage_domain"]


def test_a_new_metric_is_one_registry_entry(monkeypatch) -> None:
    """Registered, a metric is accepted by the settings, scored and sized by the evaluator, named with the
    extractor's suffix and checked before sampling: no other file changes (#35 item 3)."""
    brightest = Metric("brightest", ("brightest",), lambda s: (float(s.features.max()),), real=None,
                       refuses=lambda settings, features, samples, smallest: "needs 2 samples" if samples < 2 else None)
    monkeypatch.setitem(METRICS, "brightest", brightest)
    evaluator = evaluator_for(uint8_images(400, 0), metrics=["fid", "brightest"])
    images = uint8_images(400, 1)
    values = evaluator.score_images([images])
    assert list(values) == ["fid_domain", "brightest_domain"]
    assert values["brightest_domain"] == pytest.approx(float(MeanPoolExtractor()(images)[0].max()))
    assert evaluator.sizes(300)["brightest_domain"] == (300, None)
    with pytest.raises(UserError, match="needs 2 samples"):
        evaluator_for(uint8_images(400, 0), metrics=["brightest"]).evaluate_images(images[:1])


def test_prdc_compares_as_many_real_rows_as_samples_and_says_so() -> None:
    evaluator = evaluator_for(uint8_images(400, 0))
    assert evaluator.sizes(300)["precision_domain"] == (300, 300)
    assert evaluator.sizes(1000)["recall_domain"] == (400, 400)  # the cached rows bound both sets
    assert evaluator.sizes(300)["fid_domain"] == (300, 400) and evaluator.sizes(300)["is_domain"] == (300, None)
    real_rows = evaluator.reference.features
    seen = []
    original = prdc_module.prdc
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("src.metrics.registry.prdc", lambda real, fake, *k: seen.append((real, fake)) or original(
            real, fake, *k))
        evaluator.evaluate_images(uint8_images(300, 1))
    (real, fake), = seen
    assert len(fake) == 300 and torch.equal(real, real_rows[:300])


def test_a_cache_written_before_prdc_is_read_as_it_is(tmp_path) -> None:
    """Its real rows were named kid_features; they are the rows PRDC needs, so nothing is computed again."""
    features = gaussian(50, 0).float()
    old = {"fid_state": fid_state(features.double()), "kid_features": features, "class_histogram": torch.ones(10),
           "num_images": 50, "class_fid_states": None}
    torch.save(old, tmp_path / "old.pt")
    reference = _read(tmp_path / "old.pt", say=True)
    assert reference is not None and torch.equal(reference.features, features) and reference.num_images == 50


def test_too_few_samples_for_fid_is_a_user_error_that_says_how_many() -> None:
    with pytest.raises(UserError, match=r"needs more than 16 samples .* got num_samples=16: use at least 17"):
        evaluator_for(uint8_images(400, 0), num_samples=16)
    with pytest.raises(UserError, match="kid_subset_size=200 is more than the 100 samples"):
        evaluator_for(uint8_images(400, 0), num_samples=100)
    with pytest.raises(UserError, match="density/coverage with 5 nearest neighbours need more than 5 samples"):
        evaluator_for(uint8_images(400, 0), metrics=["prdc"]).evaluate_images(uint8_images(5, 1))


@pytest.mark.parametrize(("settings", "message"), [
    ({"extractor": "clip"}, "metrics.extractor must be one of"),
    ({"extractor": "inception", "metrics": ["fid", "coverage"]}, "coverage needs the dataset's classes"),
    ({"every_n_batches": -1}, "metrics.every_n_batches must be 0 .off. or positive"),
    ({"metrics": ["prd"]}, r"metrics.metrics may only list \('fid', 'kid', 'is', 'coverage', 'prdc'\)"),
    ({"precision_recall_k": 0}, "metrics.precision_recall_k must be positive, got 0: e.g. .*_k=3"),
])
def test_bad_settings_are_user_errors(settings: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        MetricSettings(**settings)
