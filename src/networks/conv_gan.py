"""Simple conv GAN: linear projection to a z_dim x S/4 x S/4 map, two upsampling transposed convs, and a
three-conv discriminator with a linear head. Works at any size divisible by 4."""

import torch
from torch import nn

from src.networks.init import dcgan_init, require_multiple


class Generator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 1, image_size: int = 28, width: int = 128) -> None:
        super().__init__()
        require_multiple("conv_gan", image_size, 4)
        self.z_dim, self.base = z_dim, image_size // 4
        self.project = nn.Linear(z_dim, z_dim * self.base * self.base)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, channels, 3, 1, 1),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, self.z_dim, self.base, self.base))


class Discriminator(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 64, batch_norm: bool = True) -> None:
        """batch_norm=False puts nn.Identity where the BatchNorm was (same indices), e.g. for WGAN-GP or SN."""
        super().__init__()
        require_multiple("conv_gan", image_size, 4)
        final = image_size // 8  # each k4 s2 p1 conv floors the size by half
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 4 * width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),
            nn.Linear(4 * width * final * final, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
