"""28x28 DCGAN (width w, latent 100 as 100x1x1): 1 -> 7 -> 14 -> 28 in the generator, 28 -> 14 -> 7 -> 3 -> 1
in the discriminator."""

import torch
from torch import nn

from src.networks.init import dcgan_init, require_size


class Generator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 1, image_size: int = 28, width: int = 28) -> None:
        super().__init__()
        require_size("dcgan28", image_size, 28)
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, 4 * w, 7),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(4 * w, 2 * w, 2, 2),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, channels, 2, 2),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.size(0), -1, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 28, batch_norm: bool = True) -> None:
        """batch_norm=False puts nn.Identity where the BatchNorm was (same indices), e.g. for WGAN-GP or SN, and
        gives the conv before it the bias that BatchNorm made redundant."""
        super().__init__()
        require_size("dcgan28", image_size, 28)
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, 2 * w, 2, 2, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 2, 2, bias=not batch_norm),
            nn.BatchNorm2d(4 * w) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 8 * w, 2, 2),
            nn.BatchNorm2d(8 * w) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8 * w, 1, 3, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
