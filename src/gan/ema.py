"""An exponential moving average of a network's weights (here: the generator's), kept as a frozen copy."""

import copy
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

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


def fit_ema_state(state: dict[str, torch.Tensor], ema_on: bool) -> str | None:
    """A checkpoint's state dict made to fit a module with (ema_on) or without the EMA, in place; a note saying what
    was done, if anything. Checkpoints from before the EMA (or with it off) resume with an EMA that starts from their
    generator."""
    if ema_on and not has_ema(state):
        start_from_generator(state)
        return "note: the checkpoint has no EMA generator; the EMA starts from its generator weights"
    if not ema_on and has_ema(state):
        drop_ema(state)
        return ("note: the checkpoint has an EMA generator and model.ema_decay is null, so it is dropped; resume with "
                "model.ema_decay=<its decay, e.g. 0.999> to keep it")
    return None


class EMA(nn.Module):
    """Frozen copy of `model` whose parameters follow ema = d * ema + (1 - d) * param after each `update`.

    Buffers (BatchNorm running statistics, spectral-norm vectors) are copied from the model, not averaged; they
    belong to the live weights, so before sampling a BatchNorm generator its statistics are recomputed for the
    averaged weights (recompute_batchnorm_statistics). For the first `start` updates the copy just follows the
    model (decay 0): averaging the first, fast-moving steps only drags the average back. Everything lives in this
    module's state_dict, so it is checkpointed."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True, start: int = 0) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.warmup, self.start = decay, warmup, start
        self.module = copy.deepcopy(model).requires_grad_(False).eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        # With warm-up the decay is min(decay, (1 + t) / (10 + t)) after t averaging updates (TensorFlow's EMA rule),
        # so early averages forget the start quickly. It stays a tensor: reading num_updates would sync a GPU.
        n = (self.num_updates - self.start).to(torch.float32)
        decay = torch.clamp((1 + n) / (10 + n), max=self.decay) if self.warmup else torch.full_like(n, self.decay)
        decay = torch.where(n < 0, 0.0, decay)
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


@torch.no_grad()
def recompute_batchnorm_statistics(generator: nn.Module, noise_batches: Iterable[torch.Tensor]) -> None:
    """Set every BatchNorm's running statistics in `generator` to the plain average of its batch statistics over
    these noise batches (BigGAN's "standing statistics"), in place; as a train-mode pass with momentum=None would.

    The layers stay in eval mode and forward hooks normalise with the batch statistics instead: a SyncBatchNorm
    (DDP) then starts no collective, so one rank can do this alone."""
    norms = [m for m in generator.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        return
    sums: dict[nn.Module, list] = {m: [0.0, 0.0, 0] for m in norms}

    def normalise_with_batch_statistics(module: nn.Module, inputs: tuple[torch.Tensor, ...], _) -> torch.Tensor:
        x = inputs[0].float()
        dims = [0, *range(2, x.dim())]
        count = x.numel() // x.size(1)
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        total = sums[module]
        total[0], total[1], total[2] = total[0] + mean, total[1] + var * count / max(count - 1, 1), total[2] + 1
        out = F.batch_norm(x, None, None, module.weight, module.bias, training=True, eps=module.eps)
        return out.to(inputs[0].dtype)

    handles = [m.register_forward_hook(normalise_with_batch_statistics) for m in norms]
    was_training = generator.training
    generator.eval()
    try:
        for noise in noise_batches:
            generator(noise)
    finally:
        for handle in handles:
            handle.remove()
        generator.train(was_training)
    for module, (mean_sum, var_sum, n) in sums.items():
        if n:
            module.running_mean.copy_(mean_sum / n)
            module.running_var.copy_(var_sum / n)
            module.num_batches_tracked.fill_(n)
