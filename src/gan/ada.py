"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data"): DiffAugment's transforms (src/gan/augment.py), each applied to each image with probability p, where p
follows how sure D is of the real images.

The overfitting heuristic is r_t = E[sign(D(real))], D's raw logits on the augmented real images of the D steps: a
D that has memorised the training images calls nearly all of them real (r_t -> 1). Every `interval` D steps p moves
by sign(r_t - target) * (real images judged since the last adjustment) / speed_images, clamped to [0, 1]: p grows
while r_t is above the target, shrinks while it is below, and goes from 0 to 1 in speed_images images at the fastest.

Everything stays on the device: the statistic, the adjustment (a torch.where on a step count, not a Python `if`)
and p itself, so the step reads nothing back to the host and can be replayed as a CUDA graph. p, the running
statistic and the step count are buffers: they move with the module and are saved in its checkpoints, so a resumed
run continues with the same p and the same partly gathered statistic. With several DDP processes the statistic is
summed over all of them (an all-reduce), so every process holds the same p.
"""

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from src.core.errors import UserError
from src.gan.augment import TRANSFORMS, Augment, parse_policy

SIGNS, IMAGES, STEPS = range(3)  # the tally: sum of sign(D(real)), real images judged, D steps (since the adjustment)


def summed_over_processes(counts: torch.Tensor) -> torch.Tensor:
    """counts summed over every DDP process (in place; a collective on the device, no host read); one process: as is."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(counts)
    return counts


class AdaptiveAugment(nn.Module, Augment):
    """The transforms named in `policy`, in that order, each on each image with probability p (buffer `p`)."""

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout", target: float = 0.6,
                 speed_images: int = 100_000, interval: int = 4, initial_p: float = 0.0) -> None:
        super().__init__()
        self.policy = parse_policy(policy)
        if not -1 <= target <= 1:
            raise UserError(f"augment.target is compared with E[sign(D(real))], so it must be in [-1, 1]; got {target}")
        if not speed_images > 0:
            raise UserError(f"augment.speed_images must be positive (images for p to go from 0 to 1), got "
                            f"{speed_images}")
        if not (isinstance(interval, int) and interval > 0):
            raise UserError(f"augment.interval must be a positive integer (D steps between adjustments of p), got "
                            f"{interval}")
        if not 0 <= initial_p <= 1:
            raise UserError(f"augment.initial_p is a probability, so it must be in [0, 1]; got {initial_p}")
        self.target, self.speed_images, self.interval, self.initial_p = target, speed_images, interval, initial_p
        self.register_buffer("p", torch.tensor(float(initial_p)))
        # Integers, so exact at any count, and left alone when a precision setting casts the module's float tensors.
        self.register_buffer("tally", torch.zeros(3, dtype=torch.long))
        # r_t of the last D step, for the logs only (not needed to resume: it is rewritten before it is logged).
        self.register_buffer("last_r_t", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # All draws happen whatever p is (a mask per transform and image, then each transform's own), so the random
        # stream, and with it a seeded run's other draws, does not depend on p. p = 0 returns x's values unchanged;
        # p = 1 applies every transform (U[0, 1) < 1), as DiffAugment does after the same draws.
        chosen = torch.rand(len(self.policy), x.size(0), 1, 1, 1, device=x.device) < self.p
        for name, mask in zip(self.policy, chosen, strict=True):
            x = torch.where(mask, TRANSFORMS[name](x), x)
        return x

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """Count one D step's signs; every `interval` steps, move p and start counting afresh."""
        signs = torch.sign(real_logits.detach()).flatten().long()  # integers: exact at any batch size (bf16 isn't)
        seen = torch.stack([signs.sum(), torch.full_like(signs[0], signs.numel())])
        seen = summed_over_processes(seen)
        self.last_r_t.copy_(seen[0] / seen[1])
        self.tally[:STEPS] += seen
        self.tally[STEPS] += 1
        due = self.tally[STEPS] >= self.interval
        images = self.tally[IMAGES].float()
        r_t = self.tally[SIGNS] / images.clamp(min=1)
        adjusted = (self.p + torch.sign(r_t - self.target) * images / self.speed_images).clamp(0, 1)
        self.p.copy_(torch.where(due, adjusted, self.p))
        self.tally.masked_fill_(due, 0)

    def logged(self) -> dict[str, torch.Tensor]:
        """p after this batch, and r_t = E[sign(D(real))] of its last D step (what p is steered by)."""
        return {"augment/p": self.p.detach().clone(), "augment/r_t": self.last_r_t.detach().clone()}

    def extra_repr(self) -> str:
        return (f"policy={','.join(self.policy)!r}, target={self.target}, speed_images={self.speed_images}, "
                f"interval={self.interval}, initial_p={self.initial_p}")
