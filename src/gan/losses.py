"""The design's non-saturating BCE losses, on logits so they are safe under autocast."""

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Mean of BCE(D(x), 1) and BCE(D(G(z)), 0)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return (real + fake) / 2


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(G(z)), 1): the generator wants its samples called real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
