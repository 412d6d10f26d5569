"""The adversarial step: everything one batch does on the device. n_critic D updates, then one G update, then the
EMA; it returns what the batch logs, still on the device.

With model.cuda_graph=true this is what the graph replays (src/gan/cuda_graph.py), so it reads nothing back to the
host and changes no Python state. How a loss becomes an update (directly or through Lightning) is src/gan/updates.py;
the objective (loss, penalty, augmentation) is whatever the module was given: the step never asks which."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch

from src.gan.regularizers import NoPenalty

if TYPE_CHECKING:
    from src.gan.module import GAN


def adversarial_step(gan: GAN, real: torch.Tensor, real_labels: torch.Tensor | None,
                     penalty_due: bool) -> dict[str, torch.Tensor]:
    updates, discriminator = gan.updates, gan.discriminator
    opt_g, opt_d = updates.optimizers()
    critic = discriminator if real_labels is None else functools.partial(discriminator, y=real_labels)
    reuse = gan.reuses_fake
    for _ in range(gan.settings.objective.n_critic):
        fake, fake_labels = generate(gan, real) if reuse else (None, None)
        with updates.training(opt_d, discriminator):
            if not reuse:
                with torch.no_grad():  # only D learns from this fake batch
                    fake, fake_labels = generate(gan, real)
            seen_real, seen_fake = gan.augment(real), gan.augment(fake.detach())
            real_logits = judge(gan, seen_real, real_labels)
            fake_logits = judge(gan, seen_fake, fake_labels)
            d_loss = gan.loss.discriminator(real_logits, fake_logits)
            penalty = gan.regularizer(critic, seen_real, seen_fake) if penalty_due else None
            updates.step(opt_d, d_loss if penalty is None else d_loss + penalty, discriminator)
        gan.augment.observe(real_logits)  # an adaptive augmentation (ADA) steers by D's verdict on reals
    with updates.training(opt_g, gan.generator):
        if not reuse:
            fake, fake_labels = generate(gan, real)
        g_loss = gan.loss.generator(judge(gan, gan.augment(fake), fake_labels))
        updates.step(opt_g, g_loss, gan.generator)
    if gan.ema is not None:
        gan.ema.update(gan.generator)  # copies G's BatchNorm statistics: recomputed when the EMA is sampled
    return batch_values(gan, g_loss, d_loss, real_logits, fake_logits, penalty)


def generate(gan: GAN, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A fake batch as large as the real one, and its labels (drawn from the real class shares) when conditional."""
    z = gan.sample_noise(real.size(0))
    if not gan.conditional:
        return gan.generator(z), None
    labels = gan.generator.random_labels(real.size(0), real.device)
    return gan.generator(z, labels), labels


def judge(gan: GAN, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return gan.discriminator(images) if labels is None else gan.discriminator(images, labels)


def batch_values(gan: GAN, g_loss: torch.Tensor, d_loss: torch.Tensor, real_logits: torch.Tensor,
                 fake_logits: torch.Tensor, penalty: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The losses, D's raw logits for every loss, its probabilities where they mean one, and what the augmentation
    logs (ADA's p)."""
    values = {"loss/g": g_loss.detach(), "loss/d": d_loss.detach(), "D/real": real_logits.detach().mean(),
              "D/fake": fake_logits.detach().mean()}
    if gan.loss.logits_are_probabilities:
        values |= {"D(x)": torch.sigmoid(real_logits.detach()).mean(),
                   "D(G(z))": torch.sigmoid(fake_logits.detach()).mean()}
    if penalty is not None and not isinstance(gan.regularizer, NoPenalty):
        values[f"loss/{gan.regularizer.name}"] = penalty.detach()
    return values | gan.augment.logged()
