"""GAN objectives, one class each, computed on D's logits (never on probabilities) so they are safe under autocast."""

import torch
import torch.nn.functional as F


class Loss:
    """Scalar D and G losses from D's logits on real and on generated images."""

    # True when sigmoid(logit) is D's probability that its input is real, so D(x) and D(G(z)) can be logged.
    logits_are_probabilities: bool = False

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BCE(Loss):
    """The design's non-saturating GAN (Goodfellow et al.): D = (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2,
    G = BCE(D(G(z)), 1)."""

    logits_are_probabilities = True

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return (real + fake) / 2

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# The losses below square or average raw logits: they do it in fp32, since under fp16 autocast a logit of a few
# hundred squared overflows and bf16 means lose digits.


class Hinge(Loss):
    """Hinge loss (Lim & Ye; SAGAN, BigGAN): D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), G = -mean(D(G(z)))."""

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()


class LSGAN(Loss):
    """Least squares GAN (Mao et al., a=0, b=c=1): D = (mean((D(x) - 1)^2) + mean(D(G(z))^2)) / 2,
    G = mean((D(G(z)) - 1)^2) / 2."""

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return ((real_logits.float() - 1).square().mean() + fake_logits.float().square().mean()) / 2

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return (fake_logits.float() - 1).square().mean() / 2


class Wasserstein(Loss):
    """WGAN critic loss (Arjovsky et al.): D = mean(D(G(z))) - mean(D(x)), G = -mean(D(G(z))). Needs a Lipschitz
    constraint on D: a gradient penalty (regularizer=gp) or spectral norm."""

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.float().mean() - real_logits.float().mean()

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()
