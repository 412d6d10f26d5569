"""An exponential moving average of a network's weights (here: the generator's), kept as a frozen copy."""

import copy

import torch
from torch import nn


def warmup_decay(decay: float, num_updates: int) -> float:
    """min(decay, (1 + t) / (10 + t)): early averages forget the random init quickly (TensorFlow's EMA rule).

    With decay 0.999 the warm-up rule governs the first ~9,000 updates (e.g. 0.99 after 890 updates)."""
    return min(decay, (1 + num_updates) / (10 + num_updates))


class EMA(nn.Module):
    """Frozen copy of `model` whose parameters follow ema = d * ema + (1 - d) * param after each `update`.

    Buffers (BatchNorm running statistics, spectral-norm vectors) are copied from the model, not averaged: the
    usual choice for GAN generators. Everything lives in this module's state_dict, so it is checkpointed."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.module = copy.deepcopy(model).requires_grad_(False).eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        return warmup_decay(self.decay, int(self.num_updates)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        # The decay stays a tensor on the weights' device: reading num_updates into Python would sync a GPU per step.
        n = self.num_updates.to(torch.float32)
        decay = torch.clamp((1 + n) / (10 + n), max=self.decay) if self.warmup else torch.full_like(n, self.decay)
        averaged, live = list(self.module.parameters()), [p.detach() for p in model.parameters()]
        if len(averaged) != len(live):
            raise ValueError(f"EMA holds {len(averaged)} parameters, the model {len(live)}")
        if averaged:
            torch._foreach_lerp_(averaged, live, 1.0 - decay)  # what torch.optim.swa_utils uses, one kernel per group
        for kept, current in zip(self.module.buffers(), model.buffers(), strict=True):
            kept.copy_(current)
        self.num_updates += 1

    def train(self, mode: bool = True) -> "EMA":
        """The averaged copy stays in eval mode: it is only ever sampled, never trained."""
        super().train(mode)
        self.module.eval()
        return self
