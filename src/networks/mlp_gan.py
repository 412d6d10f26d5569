"""MLP GAN: fully connected generator and discriminator on flattened images (design defaults z 64, h 128)."""

import torch
from torch import nn

from src.core.errors import UserError
from src.networks.init import dcgan_init


def _generator_block(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU(inplace=True))


def _discriminator_block(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.LeakyReLU(0.2, inplace=True))


class Generator(nn.Module):
    def __init__(self, z_dim: int = 64, channels: int = 1, image_size: int = 28, width: int = 128) -> None:
        super().__init__()
        self.image_shape = (channels, image_size, image_size)
        h = width
        self.net = nn.Sequential(
            _generator_block(z_dim, h),
            _generator_block(h, 2 * h),
            _generator_block(2 * h, 4 * h),
            _generator_block(4 * h, 8 * h),
            nn.Linear(8 * h, channels * image_size * image_size),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.size(0), *self.image_shape)


class Discriminator(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 128, batch_norm: bool = False) -> None:
        """The design's D has no BatchNorm: batch_norm is accepted (false) so presets can set it for every model."""
        super().__init__()
        if batch_norm:
            raise UserError("model=mlp_gan's discriminator has no BatchNorm to keep: set "
                            "model.discriminator.batch_norm=false")
        h = width
        self.net = nn.Sequential(
            nn.Flatten(),
            _discriminator_block(channels * image_size * image_size, 4 * h),
            _discriminator_block(4 * h, 2 * h),
            _discriminator_block(2 * h, h),
            nn.Linear(h, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
