"""Learning-rate schedules over a run's budget in batches. The GAN module steps them once per batch (Lightning
steps none under manual optimization); they are torch's own schedulers, so Lightning checkpoints and restores them."""

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler


def linear_decay(optimizer: torch.optim.Optimizer, total_batches: int) -> LRScheduler:
    """From the configured rate down to 0 at the last batch, linearly (Mimicry's SNGAN and WGAN-GP recipes)."""
    return LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_batches)


def cosine(optimizer: torch.optim.Optimizer, total_batches: int) -> LRScheduler:
    """From the configured rate down to 0 at the last batch, along a half cosine."""
    return CosineAnnealingLR(optimizer, T_max=total_batches)
