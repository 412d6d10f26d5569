"""Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random transforms go on every image D sees, real and generated, in D's and in G's step; being
differentiable, G's gradient flows through them. The randomness is drawn per sample from the global torch RNG
(on the images' device), so a seeded run repeats and an exact resume, which restores that RNG, carries on.
Every transform keeps the shape, dtype and memory format of its (N, C, H, W) input and reads nothing back to
the host.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from src.core.errors import UserError


def _uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """One U[low, high) value per sample, shaped (N, 1, 1, 1) to broadcast, in x's dtype (bf16 stays bf16)."""
    u = torch.rand(x.size(0), 1, 1, 1, device=x.device)
    return (low + (high - low) * u).to(x.dtype)


def _like(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+U[-0.5, 0.5]), saturation (distance from the pixel's channel mean x U[0, 2]) and
    contrast (distance from the image mean x U[0.5, 1.5]), in that order. Saturation does nothing to C=1."""
    x = x + _uniform(x, -0.5, 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = mean + (x - mean) * _uniform(x, 0.0, 2.0)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * _uniform(x, 0.5, 1.5)


def translation(x: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, up to 1/8 of its height and width (rounded) each way, filling with 0."""
    n, _, h, w = x.shape
    max_dy, max_dx = (h + 4) // 8, (w + 4) // 8
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    # Output pixel (i, j) reads input pixel (i - dy, j - dx), i.e. padded pixel (i - dy + max_dy, j - dx + max_dx).
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy + max_dy
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx + max_dx
    padded = F.pad(x, (max_dx, max_dx, max_dy, max_dy)).permute(0, 2, 3, 1)  # N, H', W', C
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return _like(padded[batch, rows, cols].permute(0, 3, 1, 2), x)


def cutout(x: torch.Tensor) -> torch.Tensor:
    """Zero a rectangle of half the image's height and width centred on a random pixel of each image; the parts
    that fall outside the image are lost, as in the paper (on average (7/8)^2 of the square stays inside)."""
    n, _, h, w = x.shape
    size_y, size_x = (h + 1) // 2, (w + 1) // 2
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}

# The GAN module keeps its augmentation as the attribute `augment`: the state of one that has any (src/gan/ada.py's
# p) is saved under these state_dict keys.
STATE_PREFIX = "augment."


class Augment:
    """What the training step asks of an augmentation: call it on a batch of images (real or fake, in D's and G's
    steps); `observe` gets D's raw logits on the augmented real images after each D step (an adaptive augmentation
    steers by them, src/gan/ada.py); `logged` gives extra values to log with the batch's losses, as device tensors.
    Neither may read from the device or branch on tensor values: the step may be replayed as a CUDA graph."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def observe(self, real_logits: torch.Tensor) -> None:
        """Nothing to learn from D's outputs."""

    def logged(self) -> dict[str, torch.Tensor]:
        return {}


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """("color", "translation", ...) from "color,translation" or a list; unknown names are one line."""
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    parsed = tuple(name.strip() for name in names if name.strip())
    unknown = [name for name in parsed if name not in TRANSFORMS]
    if unknown:
        raise UserError(
            f"augment.policy: unknown transform {', '.join(unknown)}; use a comma-separated list of "
            f"{', '.join(TRANSFORMS)}"
        )
    return parsed


class DiffAugment(Augment):
    """The transforms named in `policy` ("color,translation,cutout" or a list), applied in that order."""

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout") -> None:
        self.policy = parse_policy(policy)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            x = TRANSFORMS[name](x)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r})"


class NoAugment(Augment):
    """The identity: D sees the images as they are."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def __repr__(self) -> str:
        return "NoAugment()"


def fit_state(state: dict[str, torch.Tensor], augment: object, trained_with: str) -> str | None:
    """Make a checkpoint's state dict fit the configured augmentation, in place: one without augmentation state gets
    the augmentation's fresh state, one with state the configured augmentation has no use for loses it. Returns a
    note saying which, or None when the checkpoint fits already."""
    own = ({STATE_PREFIX + k: v.detach().clone() for k, v in augment.state_dict().items()}
           if isinstance(augment, torch.nn.Module) else {})
    saved = [k for k in state if k.startswith(STATE_PREFIX)]
    if own and not saved:
        state.update(own)
        return f"note: the checkpoint was trained with {trained_with}, so {augment!r} starts from its initial state"
    if saved and not own:
        for key in saved:
            del state[key]
        return (f"note: the checkpoint's augmentation state (it was trained with {trained_with}) is dropped: "
                f"{augment!r} keeps none")
    return None
