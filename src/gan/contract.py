"""What the callbacks read from the LightningModule they are attached to. A new module (a conditional GAN, another
training scheme) provides these and every callback in src/callbacks/ works with it; `GAN` in src/gan/module.py is
the reference implementation."""

from typing import Protocol

import torch
from torch import nn

from src.core.errors import UserError
from src.gan.interval_means import IntervalMeans


class GANModule(Protocol):
    generator: nn.Module  # the trained G (weights export: generator_raw.pt)
    discriminator: nn.Module  # weights export: discriminator.pt
    fixed_noise: torch.Tensor  # the latent batch of the sample grids, a buffer so it is checkpointed
    fixed_labels: torch.Tensor | None  # a conditional G's class per fixed_noise row (None: unconditional)
    grid_columns: int | None  # images per grid row (a conditional grid: one row per class); None: the callback's own
    running_sums: IntervalMeans  # what each batch logs, summed on the device: the loss line and divergence stop read it
    logged_means: dict[str, float]  # what the last logging batch logged: the loggers and the progress bar show it

    @property
    def sampling_generator(self) -> nn.Module:
        """The G that grids, metrics and generator.pt use (e.g. an EMA copy); eval mode is set by the caller."""

    @property
    def z_dim(self) -> int:
        """Length of one latent vector: what the generators take."""

    @property
    def batches_done(self) -> int:
        """Batches trained so far (trainer.global_step, which counts batches: src/core/loop.py): the x-axis of every
        log and file name."""


MEMBERS = (*GANModule.__annotations__,
           *(name for name, value in vars(GANModule).items() if isinstance(value, property)))


def require_gan_module(module: nn.Module) -> None:
    """Fail before training, in one line, when `module` lacks a member the callbacks read. Checked on the class and
    the module's own attributes, buffers and submodules: properties like batches_done need a trainer to evaluate."""
    own = set(vars(module)) | {n for n, _ in module.named_buffers(recurse=False)}
    own |= {n for n, _ in module.named_children()}
    missing = [name for name in MEMBERS if name not in own and not hasattr(type(module), name)]
    if missing:
        raise UserError(f"{type(module).__name__} lacks {', '.join(missing)}, which the callbacks read: provide them "
                        "as src/gan/contract.py describes, or run without callbacks (~callbacks)")
