"""64x64 DCGAN of Radford et al.: z projected to 8w x 4 x 4 (w = 128 gives the paper's 1024), four k4 s2 p1
transposed convs up to 64x64; the discriminator mirrors it and ends in a linear logit."""

import torch
from torch import nn

from src.networks.init import dcgan_init, require_size


def _up(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False), nn.BatchNorm2d(n_out), nn.ReLU(inplace=True)]


def _down(n_in: int, n_out: int, batch_norm: bool) -> list[nn.Module]:
    # Without BatchNorm the conv gets its bias back, and nn.Identity keeps the Sequential's indices.
    norm = nn.BatchNorm2d(n_out) if batch_norm else nn.Identity()
    return [nn.Conv2d(n_in, n_out, 4, 2, 1, bias=not batch_norm), norm, nn.LeakyReLU(0.2, inplace=True)]


class Generator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 3, image_size: int = 64, width: int = 128) -> None:
        super().__init__()
        require_size("dcgan64", image_size, 64)
        self.base = 8 * width
        self.project = nn.Linear(z_dim, self.base * 4 * 4, bias=False)
        self.net = nn.Sequential(
            nn.BatchNorm2d(self.base),
            nn.ReLU(inplace=True),
            *_up(8 * width, 4 * width),
            *_up(4 * width, 2 * width),
            *_up(2 * width, width),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, self.base, 4, 4))


class Discriminator(nn.Module):
    def __init__(self, channels: int = 3, image_size: int = 64, width: int = 128, batch_norm: bool = True) -> None:
        """batch_norm=False puts nn.Identity where the BatchNorm was (same indices), e.g. for WGAN-GP or SN."""
        super().__init__()
        require_size("dcgan64", image_size, 64)
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            *_down(width, 2 * width, batch_norm),
            *_down(2 * width, 4 * width, batch_norm),
            *_down(4 * width, 8 * width, batch_norm),
            nn.Flatten(),
            nn.Linear(8 * width * 4 * 4, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
