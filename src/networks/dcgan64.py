"""64x64 DCGAN of Radford et al.: z projected to 8w x 4 x 4 (w = 128 gives the paper's 1024), four k4 s2 p1
transposed convs up to 64x64; the discriminator mirrors it and ends in a linear logit."""

import torch
from torch import nn

from src.networks.init import dcgan_init, require_size


def _up(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False), nn.BatchNorm2d(n_out), nn.ReLU(inplace=True)]


def _down(n_in: int, n_out: int, batch_norm: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(n_in, n_out, 4, 2, 1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(n_out))
    return [*layers, nn.LeakyReLU(0.2, inplace=True)]


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
    def __init__(self, channels: int = 3, image_size: int = 64, width: int = 128) -> None:
        super().__init__()
        require_size("dcgan64", image_size, 64)
        self.net = nn.Sequential(
            *_down(channels, width, batch_norm=False),
            *_down(width, 2 * width),
            *_down(2 * width, 4 * width),
            *_down(4 * width, 8 * width),
            nn.Flatten(),
            nn.Linear(8 * width * 4 * 4, 1),
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
