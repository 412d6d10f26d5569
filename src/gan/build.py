"""The module's networks as the settings make them (spectral norm on D, class conditioning), the fixed latents of
the sample grids, and the one-line check that G and D fit the configured image shape."""

import torch
from torch import nn

from src.core.errors import UserError
from src.gan.settings import Settings
from src.networks.conditional import ProjectionDiscriminator, conditioned_generator
from src.networks.spectral_norm import apply_spectral_norm


def build_networks(generator: nn.Module, discriminator: nn.Module, settings: Settings) -> tuple[nn.Module, nn.Module]:
    images, classes = settings.images, settings.conditioning
    discriminator = apply_spectral_norm(discriminator) if settings.objective.spectral_norm else discriminator
    generator = conditioned_generator(generator, classes.conditional, classes.num_classes,
                                      classes.class_embedding_dim, classes.class_batch_norm)
    if classes.conditional:
        shape = (images.channels, images.image_size, images.image_size)
        discriminator = ProjectionDiscriminator(discriminator, classes.num_classes, shape)
    return generator, discriminator


def fixed_latents(settings: Settings) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
    """The sample grids' noise (and, conditional, their labels: one row per class, the same noise down a column) and
    the grid's columns, drawn once from their own seed, so every grid of a run shows the same latents."""
    images, classes = settings.images, settings.conditioning
    noise = torch.randn(images.num_fixed, images.z_dim, generator=torch.Generator().manual_seed(images.fixed_seed))
    if not classes.conditional:
        return noise, None, None
    columns = -(-images.num_fixed // classes.num_classes)
    labels = torch.arange(classes.num_classes).repeat_interleave(columns)
    return noise[:columns].repeat(classes.num_classes, 1), labels, columns


@torch.no_grad()
def check_shapes(generator: nn.Module, discriminator: nn.Module, noise: torch.Tensor, settings: Settings) -> None:
    """Fail at construction, in one line, when G and D don't fit the configured image shape."""
    images = settings.images
    expected = (images.channels, images.image_size, images.image_size)
    modes = [(net, net.training) for net in (generator, discriminator)]
    for net, _ in modes:
        net.eval()
    try:
        made = generator(noise[:2])
        logits = discriminator(torch.zeros(2, *expected))
    except RuntimeError as err:
        raise UserError(f"generator/discriminator do not fit images of shape {expected}: {err}") from err
    finally:
        for net, training in modes:
            net.train(training)
    if tuple(made.shape[1:]) != expected or tuple(logits.shape) != (2,):
        raise UserError(
            f"generator makes {tuple(made.shape[1:])} images and discriminator returns "
            f"{tuple(logits.shape)} for a batch of 2; expected {expected} and (2,)"
        )
