"""How the training step turns a loss into an update of one network: through Lightning, or directly.

Lightning's manual-optimization path (toggled_optimizer, manual_backward, its optimizer wrapper) serves every
strategy and precision: DDP needs the toggling and its backward preparation, fp16 the GradScaler, and callbacks that
listen to backward or optimizer-step hooks get them. On one device without loss scaling it only adds host work to
every batch, so there the step freezes the other network, calls autograd and steps the optimizer itself, as a plain
loop does: the same arithmetic. `choose_updates` picks one and says why when it is Lightning's.

Both clear autocast's cache of low-precision weight copies after each optimizer step: within one training_step
(one autocast region) a later forward would otherwise reuse the copies cast before the update."""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import lightning as L
import torch
from lightning.pytorch.plugins.precision import DoublePrecision, HalfPrecision, MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn

# Callback hooks that run inside Lightning's backward and optimizer wrappers, which the direct path skips.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")
STOCK_PRECISIONS = (Precision, MixedPrecision, HalfPrecision, DoublePrecision)


class LightningUpdates:
    """manual_backward and Lightning's optimizer wrappers; the optimizer's network alone is trainable meanwhile."""

    def __init__(self, module: L.LightningModule) -> None:
        self.module = module

    def optimizers(self) -> list:
        return self.module.optimizers()

    def training(self, optimizer, network: nn.Module) -> AbstractContextManager:
        return self.module.toggled_optimizer(optimizer)

    def step(self, optimizer, loss: torch.Tensor, network: nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.module.manual_backward(loss)
        # Lightning counts this step; src/core/loop.py's one_batch puts the count back. Gradient clipping runs in
        # the module's on_before_optimizer_step.
        optimizer.step()
        torch.clear_autocast_cache()


class DirectUpdates:
    """autograd and the optimizer called as a plain loop would, the other network frozen meanwhile."""

    def __init__(self, module: L.LightningModule, networks: tuple[nn.Module, ...], clip_norm: float | None) -> None:
        self.module = module
        self.clip_norm = clip_norm
        self._parameters = {id(net): [p for p in net.parameters() if p.requires_grad] for net in networks}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return self.module.optimizers(use_pl_optimizer=False)

    @contextmanager
    def training(self, optimizer, network: nn.Module) -> Iterator[None]:
        """The other networks frozen: their forward records nothing for weight gradients, and no backward reaches
        them (or autocast's cache of their weights)."""
        frozen = [p for net, params in self._parameters.items() if net != id(network) for p in params]
        for param in frozen:
            param.requires_grad_(False)
        try:
            yield
        finally:
            for param in frozen:
                param.requires_grad_(True)

    def step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, network: nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._parameters[id(network)], self.clip_norm, foreach=True)
        optimizer.step()
        torch.clear_autocast_cache()


def why_lightning_updates(trainer: L.Trainer) -> str | None:
    """Why this run needs Lightning's backward and optimizer wrappers (None: it does not)."""
    strategy, precision = trainer.strategy, trainer.precision_plugin
    if type(strategy) is not SingleDeviceStrategy:
        return f"strategy {type(strategy).__name__}"
    if type(precision) not in STOCK_PRECISIONS:
        return f"precision plugin {type(precision).__name__}"
    if getattr(precision, "scaler", None) is not None:
        return "fp16's GradScaler"
    listening = [f"{type(cb).__name__}.{hook}" for cb in trainer.callbacks for hook in STEP_HOOKS
                 if is_overridden(hook, cb, L.Callback)]
    if listening:
        return f"the callback hook {', '.join(listening)}"
    return None


def choose_updates(module: L.LightningModule, clip_norm: float | None) -> tuple[DirectUpdates | LightningUpdates,
                                                                              str | None]:
    """The direct path where the run allows it, else Lightning's, with the reason."""
    reason = why_lightning_updates(module.trainer)
    if reason is not None:
        return LightningUpdates(module), reason
    return DirectUpdates(module, (module.generator, module.discriminator), clip_norm), None

