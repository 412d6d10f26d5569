"""An exponential moving average of a network's weights (here: the generator's), kept as a frozen copy."""

import copy

import torch
from torch import nn

DEFAULT_DECAY = 0.999
# The GAN module keeps its EMA as the attribute `ema`: checkpoints hold it under these state_dict keys.
STATE_PREFIX = "ema."
WEIGHTS_PREFIX = STATE_PREFIX + "module."  # the averaged generator's weights ("ema.num_updates" is the counter)


def has_ema(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(STATE_PREFIX) for k in state)


def ema_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The averaged generator's own state dict, out of a GAN module's state dict."""
    return {k.removeprefix(WEIGHTS_PREFIX): v for k, v in state.items() if k.startswith(WEIGHTS_PREFIX)}


def start_from_generator(state: dict[str, torch.Tensor], generator_prefix: str = "generator.") -> None:
    """Give a state dict without EMA keys an EMA that starts at its generator's weights (in place)."""
    for key in [k for k in state if k.startswith(generator_prefix)]:
        state[WEIGHTS_PREFIX + key.removeprefix(generator_prefix)] = state[key].clone()
    state[STATE_PREFIX + "num_updates"] = torch.zeros((), dtype=torch.long)


def drop_ema(state: dict[str, torch.Tensor]) -> None:
    for key in [k for k in state if k.startswith(STATE_PREFIX)]:
        del state[key]


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

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        # With warm-up the decay is min(decay, (1 + t) / (10 + t)) after t updates (TensorFlow's EMA rule), so early
        # averages forget the random init quickly. It stays a tensor: reading num_updates would sync a GPU per step.
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
