"""Precision/recall and density/coverage give their defining values on constructed feature sets: a hand-computed
case, identical sets, far-apart sets, a set missing a mode, brute-force loops over the definitions, and
torch-fidelity's precision and recall."""

import pytest
import torch

from src.metrics import prdc as prdc_module
from src.metrics.prdc import knn_radii, prdc


def column(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


def test_a_hand_computed_case_in_one_dimension() -> None:
    """k = 1. Real 0, 1, 2, 3, 10: radii (distance to the nearest other real point) 1, 1, 1, 1, 7.
    Fake 0.5, 4.5, 20, 21: radii 4, 4, 1, 1.
    - precision: 0.5 is in the ball of 0; 4.5 in the ball of 10 (5.5 <= 7); 20 and 21 in none -> 2/4.
    - recall: 0, 1, 2 are within 4 of 0.5; 3 within 4 of 4.5; 10 is 5.5 from 4.5 and 10 from 20 -> 4/5.
    - density: 0.5 lies in the balls of 0 and 1, 4.5 in the ball of 10, 20 and 21 in none -> 3 / (k * 4).
    - coverage: the balls of 0, 1 (0.5) and 10 (4.5) hold a sample, those of 2 and 3 none -> 3/5."""
    real, fake = column(0, 1, 2, 3, 10), column(0.5, 4.5, 20, 21)
    assert knn_radii(real, 1, 2).tolist() == [[1, 2], [1, 1], [1, 1], [1, 2], [7, 8]]
    assert prdc(real, fake, pr_k=1, dc_k=1) == {"precision": 0.5, "recall": 0.8, "density": 0.75, "coverage": 0.6}


def test_ball_edges_follow_each_paper() -> None:
    """Real 0, 1, 3, 4: radii (k = 1) all 1. Samples at 2 lie exactly on the edge of the balls of 1 and 3 and inside
    no ball: Kynkaenniemi et al. count the edge (closed balls), Naeem et al.'s code does not (open balls)."""
    real, fake = column(0, 1, 3, 4), column(2, 2)
    assert prdc(real, fake, pr_k=1, dc_k=1) == {"precision": 1.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_identical_sets_score_one() -> None:
    features = torch.randn(600, 16, generator=torch.Generator().manual_seed(0))
    values = prdc(features, features.clone())
    assert values["precision"] == values["recall"] == values["coverage"] == 1.0
    # Each open ball holds its own point and the k - 1 neighbours nearer than the k-th: k samples per ball.
    assert values["density"] == pytest.approx(1.0, abs=0.01)


def test_far_apart_sets_score_zero() -> None:
    real = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    fake = torch.randn(300, 8, generator=torch.Generator().manual_seed(1)) + 100
    assert prdc(real, fake) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_samples_of_one_of_two_real_modes_are_precise_but_miss_half_the_data() -> None:
    rng = torch.Generator().manual_seed(0)
    shift = torch.zeros(8)
    shift[0] = 50
    real = torch.cat([torch.randn(500, 8, generator=rng), torch.randn(500, 8, generator=rng) + shift])
    fake = torch.randn(1000, 8, generator=rng)  # the first mode only
    values = prdc(real, fake)
    assert values["precision"] > 0.8 and values["recall"] < 0.55 and values["coverage"] < 0.55
    # Inside the mode they cover the samples follow the real distribution: density stays near 1, coverage drops.
    assert values["density"] == pytest.approx(1.0, abs=0.15)


def brute_force(real: torch.Tensor, fake: torch.Tensor, pr_k: int, dc_k: int) -> dict[str, float]:
    """The definitions, point by point, in float64."""
    real, fake = real.double(), fake.double()

    def radius(points: torch.Tensor, i: int, k: int) -> float:
        return sorted(float((points[i] - points[j]).norm()) for j in range(len(points)) if j != i)[k - 1]

    def dist(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm())

    r_pr = [radius(real, i, pr_k) for i in range(len(real))]
    f_pr = [radius(fake, j, pr_k) for j in range(len(fake))]
    r_dc = [radius(real, i, dc_k) for i in range(len(real))]
    precision = sum(any(dist(f, r) <= r_pr[i] for i, r in enumerate(real)) for f in fake) / len(fake)
    recall = sum(any(dist(r, f) <= f_pr[j] for j, f in enumerate(fake)) for r in real) / len(real)
    inside = [[dist(f, r) < r_dc[i] for i, r in enumerate(real)] for f in fake]
    density = sum(map(sum, inside)) / (dc_k * len(fake))
    coverage = sum(any(row[i] for row in inside) for i in range(len(real))) / len(real)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_chunked_values_equal_the_definitions(monkeypatch) -> None:
    monkeypatch.setattr(prdc_module, "CHUNK", 7)  # several chunks, the last one short
    rng = torch.Generator().manual_seed(3)
    real, fake = torch.randn(40, 5, generator=rng), torch.randn(30, 5, generator=rng) * 1.3 + 0.4
    assert prdc(real, fake, pr_k=3, dc_k=5) == pytest.approx(brute_force(real, fake, 3, 5), abs=1e-9)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_and_recall_equal_torch_fidelitys(monkeypatch, k: int) -> None:
    from torch_fidelity.metric_prc import prc_features_to_metric

    monkeypatch.setattr(prdc_module, "CHUNK", 64)
    rng = torch.Generator().manual_seed(k)
    real, fake = torch.randn(300, 16, generator=rng), torch.randn(250, 16, generator=rng) * 1.2 + 0.3
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=k, save_cpu_ram=True, verbose=False)
    ours = prdc(real, fake, pr_k=k)
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1  # a case where the balls decide
    assert (ours["precision"], ours["recall"]) == pytest.approx((theirs["precision"], theirs["recall"]), abs=1e-6)
