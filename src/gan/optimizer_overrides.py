"""A resumed run's optimizers: they come back with the settings they were saved with, and the configured ones win,
so e.g. `resume=<run> model.lr_g=1e-4` takes effect (one line says what changed). A scheduled rate is rescaled where
it stands: its schedule continues from the new base rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning.pytorch.utilities import rank_zero_info

if TYPE_CHECKING:
    from src.gan.module import GAN


def same(saved: object, configured: object) -> bool:
    """Optimizer settings as saved (tuples, floats) and as configured (lists from the config)."""
    if isinstance(saved, (list, tuple)) and isinstance(configured, (list, tuple)):
        return len(saved) == len(configured) and all(same(a, b) for a, b in zip(saved, configured, strict=True))
    return saved == configured


def apply_configured_settings(gan: GAN) -> None:
    """Called when training starts, after Lightning restored the optimizers (a fresh run changes nothing)."""
    schedulers = gan.lr_schedulers() or []
    schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
    changed = []
    networks = zip(("optimizer_g", "optimizer_d"), gan.optimizers(), (gan.optimizer_g, gan.optimizer_d),
                   (gan.generator, gan.discriminator), strict=True)
    for i, (name, optimizer, factory, net) in enumerate(networks):
        wanted = factory(net.parameters()).defaults
        for group in optimizer.param_groups:
            if "capturable" in group:  # how this run steps (a CUDA graph or not), not a setting to compare
                group["capturable"] = gan.captured
            for key, value in wanted.items():
                if key not in group or key == "capturable" or same(group[key], value):
                    continue
                if key == "lr":
                    changed.append(_rescale_rate(group, value, schedulers[i] if i < len(schedulers) else None, name))
                else:
                    changed.append(f"{name} {key} {group[key]} -> {value}")
                    group[key] = value
    if changed:
        rank_zero_info(f"[resume] the configured optimizer settings replace the saved ones: {', '.join(changed)}")


def _rescale_rate(group: dict, rate: float, scheduler: object | None, name: str) -> str:
    base = group.get("initial_lr", group["lr"])
    group["lr"] = group["lr"] * rate / base if base else rate
    if "initial_lr" in group:
        group["initial_lr"] = rate
    if scheduler is not None:
        scheduler.base_lrs = [rate for _ in scheduler.base_lrs]
    return f"{name} lr {base:g} -> {rate:g}"
