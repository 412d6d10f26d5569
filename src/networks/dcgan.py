"""32x32 DCGAN (width w, design default 28): 1 -> 4 -> 10 -> 18 -> 32 in the generator, 32 -> 16 -> 8 -> 4 -> 1
in the discriminator."""

import torch
from torch import nn

from src.networks.init import dcgan_init, require_size


class Generator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 1, image_size: int = 32, width: int = 28) -> None:
        super().__init__()
        require_size("dcgan", image_size, 32)
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 8 * w, 4, 1, 0),
            nn.BatchNorm2d(8 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 0),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 2),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, channels, 2, 2, 2),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.size(0), -1, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 32, width: int = 28, batch_norm: bool = True) -> None:
        """batch_norm=False puts nn.Identity where the BatchNorm was (same indices), e.g. for WGAN-GP or SN."""
        super().__init__()
        require_size("dcgan", image_size, 32)
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, 2 * w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
            nn.BatchNorm2d(4 * w) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 8 * w, 4, 2, 1),
            nn.BatchNorm2d(8 * w) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * w, 1, 4, 1, 0),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
