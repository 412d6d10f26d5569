"""ResNet GAN of SNGAN (Miyato et al. 2018, its appendix; the residual design of Gulrajani et al. 2017), with BigGAN's
per-block channel multipliers (channels = width x multiplier) so one pair of classes gives the 32, 48 and 64 px
layouts of conf/model/resnet*.yaml.

Generator: z -> Linear -> (C0, base, base), base = image_size / 2**k for k up blocks (4 for 32 and 64 px with 3 and
4 blocks, 6 for 48 px with 3); each block is BN-ReLU-upsample(nearest, x2)-conv3x3-BN-ReLU-conv3x3 plus a shortcut
(1x1 conv, upsampled); then BN-ReLU-conv3x3-tanh.
Discriminator: an optimized first block (conv3x3-ReLU-conv3x3-avgpool, shortcut avgpool-1x1 conv), then
ReLU-conv3x3-ReLU-conv3x3(-avgpool) blocks, the first `downsamples` of them (the first block counted) halving the
resolution, then ReLU, a global sum over positions and a Linear to one logit. `net` ends in that Linear, so the
projection discriminator (src/networks/conditional.py) takes its features from net[:-1].

A 1x1 shortcut conv commutes with nearest upsampling and with 2x2 average pooling (both are linear and act on each
channel alike), so the shortcut runs its conv at the lower resolution: the same function, at a quarter of the cost."""

import math
from itertools import pairwise

import torch
from torch import nn

from src.core.errors import UserError
from src.networks.init import require_multiple


def _channels(width: int, multipliers: list[int], name: str, at_least: int) -> list[int]:
    multipliers = [int(m) for m in multipliers]
    if width <= 0 or len(multipliers) < at_least or min(multipliers) <= 0:
        raise UserError(f"model.{name}: width must be positive and multipliers a list of at least {at_least} "
                        f"positive integers (channels = width x multiplier), got width={width}, "
                        f"multipliers={multipliers}")
    return [width * m for m in multipliers]


class UpBlock(nn.Module):
    """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus the upsampled input through a 1x1 conv (as SNGAN, always)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(n_in)
        self.conv1 = nn.Conv2d(n_in, n_out, 3, 1, 1)
        self.norm2 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(n_in, n_out, 1)
        self.act = nn.ReLU(inplace=True)  # on BatchNorm outputs, which nothing else reads
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.up(self.act(self.norm1(x))))
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.up(self.shortcut(x))


class DownBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3(-avgpool), plus the (pooled) input through a 1x1 conv where the channels change or
    the block pools, else unchanged. first=True is SNGAN's optimized first block: no ReLU on the image, the hidden
    width is n_out (else n_in, as SNGAN) and it always pools."""

    def __init__(self, n_in: int, n_out: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        downsample = downsample or first
        hidden = n_out if first else n_in
        self.act_in = nn.Identity() if first else nn.ReLU()  # not in place: the shortcut reads the input too
        self.conv1 = nn.Conv2d(n_in, hidden, 3, 1, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(hidden, n_out, 3, 1, 1)
        self.pool = nn.AvgPool2d(2) if downsample else nn.Identity()
        self.shortcut = nn.Conv2d(n_in, n_out, 1) if downsample or n_in != n_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.conv2(self.act(self.conv1(self.act_in(x)))))
        return h + self.shortcut(self.pool(x))


class SumPool(nn.Module):
    """Global sum pooling over positions (SNGAN's D): (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))


def sngan_init(module: nn.Module) -> None:
    """SNGAN's initialisation (its Chainer code): Xavier-uniform weights with gain sqrt(2) for the 3x3 convs of the
    residual blocks, gain 1 for everything else (shortcuts, G's input Linear and output conv, D's Linear), zero
    biases; BatchNorm keeps scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():  # after the pass above, which reaches a block's convs after the block itself
        if isinstance(m, (UpBlock, DownBlock)):
            for conv in (m.conv1, m.conv2):
                nn.init.xavier_uniform_(conv.weight, math.sqrt(2.0))


class Generator(nn.Module):
    def __init__(self, z_dim: int = 128, channels: int = 3, image_size: int = 32, width: int = 256,
                 multipliers: list[int] = (1, 1, 1, 1)) -> None:
        """multipliers: channels (x width) of the base map, then of each up block's output; k = len - 1 blocks."""
        super().__init__()
        sizes = _channels(width, multipliers, "generator", at_least=2)
        blocks = len(sizes) - 1
        require_multiple(f"resnet ({blocks} generator up blocks)", image_size, 2**blocks)
        self.base, self.base_channels = image_size // 2**blocks, sizes[0]
        self.project = nn.Linear(z_dim, sizes[0] * self.base * self.base)
        self.net = nn.Sequential(
            *(UpBlock(n_in, n_out) for n_in, n_out in pairwise(sizes)),
            nn.BatchNorm2d(sizes[-1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(sizes[-1], channels, 3, 1, 1),
            nn.Tanh(),
        )
        sngan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, self.base_channels, self.base, self.base))


class Discriminator(nn.Module):
    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 128,
                 multipliers: list[int] = (1, 1, 1, 1), downsamples: int = 2, batch_norm: bool = False) -> None:
        """multipliers: each block's output channels (x width), the optimized first block's first; the first
        `downsamples` blocks halve the resolution. batch_norm is accepted (false) so presets can set it for every
        model: SNGAN's D has no BatchNorm."""
        super().__init__()
        if batch_norm:
            raise UserError("the resnet models' discriminator has no BatchNorm to keep (SNGAN's has none): set "
                            "model.discriminator.batch_norm=false")
        sizes = _channels(width, multipliers, "discriminator", at_least=1)
        if not 1 <= downsamples <= len(sizes):
            raise UserError(f"model.discriminator.downsamples must be 1..{len(sizes)} (its blocks, the first of which "
                            f"always halves the resolution), got {downsamples}")
        require_multiple(f"resnet ({downsamples} discriminator downsampling blocks)", image_size, 2**downsamples)
        blocks = [DownBlock(channels, sizes[0], downsample=True, first=True)]
        blocks += [DownBlock(n_in, n_out, downsample=i < downsamples)
                   for i, (n_in, n_out) in enumerate(pairwise(sizes), start=1)]
        self.net = nn.Sequential(*blocks, nn.ReLU(), SumPool(), nn.Linear(sizes[-1], 1))
        sngan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)
