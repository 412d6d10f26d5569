"""FID, KID and IS from features the extractor already produced, through torchmetrics; plus class coverage.

torchmetrics runs its `feature` module on what `update` receives: a pass-through module lets one extractor pass
feed all three metrics. FID runs in float64 end to end (states, features and result)."""

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance


class Passthrough(nn.Module):
    """The `feature` module of a torchmetrics metric that receives features instead of images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _quietly(make):
    with warnings.catch_warnings():  # KID and IS warn that they keep every feature: we pass them few, once
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        return make()


def fid_metric(num_features: int) -> FrechetInceptionDistance:
    return FrechetInceptionDistance(feature=Passthrough(num_features))


def frechet_distance(real_state: dict[str, torch.Tensor], fake_features: torch.Tensor) -> float:
    """FID between the cached real statistics (a fid_metric's state after real updates) and these features."""
    fid = fid_metric(fake_features.shape[1])
    fid.merge_state(real_state)
    fid.update(fake_features.double(), real=False)
    return float(fid.compute())


def kernel_distance(real_features: torch.Tensor, fake_features: torch.Tensor, subsets: int, subset_size: int,
                    seed: int) -> tuple[float, float]:
    """Unbiased KID (cubic polynomial kernel), mean and std over random subsets."""
    kid = _quietly(lambda: KernelInceptionDistance(feature=Passthrough(fake_features.shape[1]), subsets=subsets,
                                                   subset_size=subset_size))
    kid.update(real_features.double(), real=True)
    kid.update(fake_features.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # seeded subsets, and the training RNG stays untouched
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor, splits: int, seed: int) -> tuple[float, float]:
    """exp(E KL(p(y|x) || p(y))), mean and std over `splits` groups."""
    score = _quietly(lambda: InceptionScore(feature=Passthrough(logits.shape[1]), splits=splits))
    score.update(logits.double())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = score.compute()
    return float(mean), float(std)


def class_coverage(logits: torch.Tensor, real_histogram: torch.Tensor, min_share: float,
                   balanced_share: float = 0.5) -> tuple[int, int, float]:
    """(classes covered, classes balanced, KL(p_samples || p_real) in nats) over predicted labels.

    A class is covered when the samples put at least `min_share` of its real share on it (0.1: a tenth of the
    real frequency), balanced at `balanced_share` of it (0.5: half; a tenth still counts a badly
    under-represented class). KL(samples || real) grows when samples pile onto few classes; classes the real
    data lacks are smoothed by 1e-6."""
    p_fake = torch.bincount(logits.argmax(dim=1), minlength=logits.shape[1]).double()
    p_fake /= p_fake.sum()
    p_real = real_histogram.double() / real_histogram.sum()
    covered, balanced = (int(((p_real > 0) & (p_fake >= share * p_real)).sum()) for share in (min_share,
                                                                                               balanced_share))
    nonzero = p_fake > 0
    kl = (p_fake[nonzero] * (p_fake[nonzero] / p_real[nonzero].clamp_min(1e-6)).log()).sum()
    return covered, balanced, float(kl)
