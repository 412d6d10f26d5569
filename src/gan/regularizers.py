"""Penalties on D, added to its loss: none, WGAN-GP's gradient penalty, or StyleGAN2's lazy R1.

A regulariser is due on the batches where `due(batches_done)` holds (every `every` batches, decided on the host
from a Python int, so skipping costs no GPU sync); called as `regularizer(discriminator, real, fake)` it returns
the weighted penalty, already multiplied by `every` so lazy regularisation keeps the same strength.

The penalties run D's forward and the input-gradient backward in fp32 outside autocast, since a double backward
loses too much in fp16/bf16 (the penalty's own backward autocasts if manual_backward runs under autocast). They are
added to the D loss before Lightning's manual_backward, so an fp16 GradScaler scales them together with the loss
and its inf/nan checks cover them too.
"""

import torch
from torch import nn

from src.core.errors import UserError


class Regularizer:
    name: str  # for logging, e.g. loss/d_<name>
    every: int = 1

    def due(self, batches_done: int) -> bool:
        return batches_done % self.every == 0

    def __call__(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class NoPenalty(Regularizer):
    """No penalty: a constant zero (no graph, no D forward)."""

    name = "none"

    def __call__(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), device=real.device)


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al.): weight * mean((||grad D(x_hat)||_2 - 1)^2) at x_hat = eps * real + (1 - eps) * fake,
    eps ~ U[0, 1] per sample."""

    name = "gp"

    def __init__(self, weight: float = 10.0, every: int = 1) -> None:
        _require_every(every)
        self.weight, self.every = weight, every

    def __call__(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real, fake = real.detach().float(), fake.detach().float()
        eps = torch.rand(real.size(0), *[1] * (real.dim() - 1), device=real.device)
        x_hat = torch.lerp(fake, real, eps).requires_grad_(True)
        grad = _input_gradient(discriminator, x_hat)
        norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
        return self.every * self.weight * (norm - 1).square().mean()


class R1(Regularizer):
    """R1 (Mescheder et al.) applied lazily as in StyleGAN2: every * gamma / 2 * mean(||grad D(x)||^2) on real x,
    on one batch in `every`."""

    name = "r1"

    def __init__(self, gamma: float = 10.0, every: int = 16) -> None:
        _require_every(every)
        self.gamma, self.every = gamma, every

    def __call__(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        x = real.detach().float().requires_grad_(True)
        grad = _input_gradient(discriminator, x)
        return self.every * self.gamma / 2 * grad.flatten(1).square().sum(1).mean()


def _input_gradient(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """d(sum of D's logits)/dx, kept in the graph (create_graph) so the penalty's gradient reaches D's weights."""
    # force_eager: torch.compile (model.compile=true) can't double backward, so a compiled D runs eagerly here.
    # The backward that autograd.grad runs (and records, for the penalty's own backward) would autocast too.
    with torch.autocast(device_type=x.device.type, enabled=False), torch.compiler.set_stance("force_eager"):
        logits = discriminator(x).float()
        (grad,) = torch.autograd.grad(outputs=logits.sum(), inputs=x, create_graph=True)
    return grad


def _require_every(every: int) -> None:
    if not isinstance(every, int) or every < 1:
        raise UserError(f"regularizer.every must be a positive integer (1 = every batch), got {every}")
