"""How fast the same step runs: NHWC layout, torch.compile, and the path each batch takes (Lightning's wrappers or
direct updates: src/gan/updates.py; replayed as one CUDA graph or eager: src/gan/cuda_graph.py). Decided once, when
the trainer is known and before the optimizers exist."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import torch
from lightning.pytorch.utilities import rank_zero_info

from src.gan.cuda_graph import why_not_captured
from src.gan.updates import DirectUpdates, LightningUpdates, choose_updates

if TYPE_CHECKING:
    from src.gan.module import GAN, OptimizerFactory


def takes_capturable(*factories: OptimizerFactory) -> bool:
    """Whether every optimizer factory accepts capturable=True (Adam's and AdamW's state on the device)."""
    return all("capturable" in inspect.signature(factory).parameters for factory in factories)


def prepare_networks(gan: GAN) -> bool:
    """NHWC and torch.compile as configured; whether the images go NHWC too."""
    channels_last = use_channels_last(gan)
    if channels_last:  # NHWC convolutions: faster on tensor cores (and a little on CPU)
        for net in (gan.generator, gan.discriminator, gan.ema):
            if net is not None:
                net.to(memory_format=torch.channels_last)
    if gan.settings.speed.compile:  # in place: the modules keep their own state_dict keys (no `_orig_mod.`)
        gan.generator.compile()
        gan.discriminator.compile()
    return channels_last


def use_channels_last(gan: GAN) -> bool:
    speed = gan.settings.speed
    if not speed.channels_last:
        return False
    if speed.compile and gan.trainer.strategy.root_device.type == "cuda":
        rank_zero_info("[compile] model.compile=true on a GPU keeps G and D in NCHW (model.channels_last is set "
                       "aside): torch 2.11's inductor crashed on channels_last convolution backwards on an H200")
        return False
    return True


def choose_path(gan: GAN) -> tuple[DirectUpdates | LightningUpdates, bool]:
    """The updates, and whether the batch is replayed as a CUDA graph (model.cuda_graph=true and the run allows
    it); one line says which when a graph was asked for."""
    updates, lightning_reason = choose_updates(gan, gan.settings.objective.grad_clip_norm)
    if not gan.settings.speed.cuda_graph:
        return updates, False
    reason = why_not_captured(gan.trainer.strategy.root_device, lightning_reason, gan.scheduler is not None,
                              gan.settings.speed.compile, takes_capturable(gan.optimizer_g, gan.optimizer_d))
    rank_zero_info(f"[step] model.cuda_graph=true: the step runs eagerly, since {reason}" if reason else
                   "[step] model.cuda_graph=true: each batch replays one CUDA graph (after 3 eager batches)")
    return updates, reason is None
