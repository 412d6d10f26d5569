"""Sample a trained generator: `python -m src.generate ckpt_path=<ckpt or run folder> num_samples=10000`.

mode=grid (the default) writes samples.png (a grid of the first samples) and samples.npz (keys `images`, uint8,
N x C x H x W, and `latents`, N x z_dim; `labels` for a conditional run, which samples one class with class_id=7, every
class with per_class=N, or else classes in proportion to its training data).

mode=interpolate walks spherically (slerp) from latent 2p to latent 2p+1 of the seed, for each path p: the latents
that samples 2p and 2p+1 of mode=grid have. It writes interpolation.png (a row per path, a column per step),
interpolation.gif (every path at once, there and back, looping) and interpolation.npz (`images`, paths x steps x C x
H x W; `latents`, paths x steps x z_dim; `labels`, one class per path, for a conditional run).

truncation=psi (any mode) redraws every latent component beyond psi (the truncation trick); null: none."""

import logging
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image

from src.core.atomic_io import atomic_write
from src.core.checks import require_positive, require_seed, require_writable
from src.core.errors import UserError
from src.gan.sampling import grid, images_in_batches, latents, pixels, save_gif, save_grid, slerp
from src.networks.conditional import ConditionalGenerator
from src.run.checkpoints import load_generator
from src.run.cli import pick_device, refuse_unknown_keys, run_cli

log = logging.getLogger(__name__)

MODES = {"grid": "samples.png and samples.npz", "interpolate": "interpolation.png, .gif and .npz"}


def generate(cfg: DictConfig) -> Path:
    mode = cfg.get("mode", "grid")
    if mode not in MODES:
        raise UserError(f"mode={mode} is not a mode of src.generate: use "
                        + " or ".join(f"mode={name} ({files})" for name, files in MODES.items()))
    for key in ("num_samples", "batch_size", "nrow"):
        require_positive(cfg[key], key)
    if mode == "interpolate":
        check_interpolation(cfg)
    require_seed(cfg.seed)
    truncation = requested_truncation(cfg.get("truncation"))
    device = pick_device(str(cfg.device))
    generator, run_cfg, weights, is_ema = load_generator(cfg.ckpt_path, cfg.get("use_ema"))
    out = Path(cfg.output_dir) if cfg.output_dir else weights.parent
    require_writable(out, "output_dir", "output_dir=samples")
    generator.to(device)
    out.mkdir(parents=True, exist_ok=True)
    write = write_samples if mode == "grid" else write_interpolation
    what = write(cfg, generator, int(run_cfg.model.z_dim), device, out, truncation)
    which = "EMA" if is_ema else "raw"
    truncated = "" if truncation is None else f" (truncation={truncation})"
    log.info(f"wrote {what} of the {which} generator in {weights}{truncated} to {out}/{MODES[mode]}")
    return out


def requested_truncation(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UserError(f"truncation must be a number above 0 (e.g. truncation=0.7: latent components beyond 0.7 are "
                        f"drawn again), or null for none; got {value!r}")
    return float(value)


def write_samples(cfg: DictConfig, generator: torch.nn.Module, z_dim: int, device: torch.device, out: Path,
                  truncation: float | None) -> str:
    """mode=grid: samples.npz and samples.png; returns what was written, for the closing line."""
    labels = requested_labels(cfg, generator, cfg.num_samples)
    num_samples = cfg.num_samples if labels is None else len(labels)
    noise = latents(num_samples, z_dim, cfg.seed, truncation)
    images = None
    start = 0
    for batch in images_in_batches(generator, noise.split(cfg.batch_size), device, labels):
        if images is None:  # the image shape is known from the first batch on
            images = np.empty((num_samples, *batch.shape[1:]), dtype=np.uint8)
        images[start : start + len(batch)] = batch.numpy()
        start += len(batch)

    extra = {} if labels is None else {"labels": labels.numpy()}
    atomic_write(out / "samples.npz", lambda f: np.savez_compressed(f, images=images, latents=noise.numpy(), **extra))
    if cfg.get("per_class"):  # one row per class, its first nrow samples
        nrow = min(int(cfg.per_class), cfg.nrow)
        shown = [c * cfg.per_class + j for c in range(generator.num_classes) for j in range(nrow)]
    else:
        nrow, shown = cfg.nrow, list(range(min(num_samples, cfg.nrow * cfg.nrow)))
    save_grid(torch.from_numpy(images[shown]).float() / 127.5 - 1, out / "samples.png", nrow)
    if labels is None:
        return f"{num_samples} samples"
    if cfg.class_id is not None:
        return f"{num_samples} samples of class {cfg.class_id}"
    if cfg.per_class is not None:
        return f"{num_samples} samples ({cfg.per_class} of each of {generator.num_classes} classes)"
    return f"{num_samples} samples (classes in proportion to the training data)"


def check_interpolation(cfg: DictConfig) -> None:
    spec = cfg.interpolation
    require_positive(spec.paths, "interpolation.paths", 8)
    require_positive(spec.ms_per_frame, "interpolation.ms_per_frame", 100)
    if isinstance(spec.steps, bool) or not isinstance(spec.steps, int) or spec.steps < 2:
        raise UserError(f"interpolation.steps must be a whole number of at least 2 (both ends of each path), got "
                        f"{spec.steps!r}: e.g. interpolation.steps=10")
    if cfg.get("per_class") is not None:
        raise UserError("per_class is for mode=grid; mode=interpolate keeps one class along each path: class_id=N for "
                        "every path, or no class_id for classes in proportion to the training data")


def interpolate(generator: torch.nn.Module, z_dim: int, paths: int, steps: int, seed: int, batch_size: int,
                device: torch.device, truncation: float | None = None,
                labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Slerp from latent 2p to latent 2p+1 of `seed` for p < paths, `steps` points each: (latents, paths x steps x
    z_dim; uint8 images on the CPU, paths x steps x C x H x W). labels: one class per path, for a conditional G."""
    ends = latents(2 * paths, z_dim, seed, truncation)
    path_latents = slerp(ends[0::2], ends[1::2], steps)
    flat_labels = None if labels is None else labels.repeat_interleave(steps)
    batches = path_latents.flatten(0, 1).split(batch_size)
    images = torch.cat(list(images_in_batches(generator, batches, device, flat_labels)))
    return path_latents, images.view(paths, steps, *images.shape[1:])


def write_interpolation(cfg: DictConfig, generator: torch.nn.Module, z_dim: int, device: torch.device, out: Path,
                        truncation: float | None) -> str:
    """mode=interpolate: interpolation.png, .gif and .npz; returns what was written, for the closing line."""
    paths, steps = int(cfg.interpolation.paths), int(cfg.interpolation.steps)
    labels = requested_labels(cfg, generator, paths)
    path_latents, images = interpolate(generator, z_dim, paths, steps, cfg.seed, cfg.batch_size, device, truncation,
                                       labels)
    extra = {} if labels is None else {"labels": labels.numpy()}
    atomic_write(out / "interpolation.npz",
                 lambda f: np.savez_compressed(f, images=images.numpy(), latents=path_latents.numpy(), **extra))
    as_float = images.float() / 127.5 - 1
    save_grid(as_float.flatten(0, 1), out / "interpolation.png", nrow=steps)
    there_and_back = [*range(steps), *range(steps - 2, 0, -1)]  # the last frame leads back into the first
    frames = [Image.fromarray(pixels(grid(as_float[:, s], min(cfg.nrow, paths)))) for s in there_and_back]
    save_gif(frames, out / "interpolation.gif", int(cfg.interpolation.ms_per_frame))
    classes = "" if labels is None else (f" of class {cfg.class_id}" if cfg.class_id is not None else
                                         " (one class a path, in proportion to the training data)")
    return f"{paths} interpolation paths of {steps} steps ({len(frames)} GIF frames){classes}"


def requested_labels(cfg: DictConfig, generator: torch.nn.Module, num_samples: int) -> torch.Tensor | None:
    """The class of each of num_samples samples (None for an unconditional G): as class_id= or per_class= ask, else in
    proportion to the training data's class shares, spread over all samples (not per batch)."""
    class_id, per_class = cfg.get("class_id"), cfg.get("per_class")
    if class_id is None and per_class is None:
        conditional = isinstance(generator, ConditionalGenerator)
        return generator.proportional_labels(num_samples, torch.device("cpu")) if conditional else None
    if not isinstance(generator, ConditionalGenerator):
        raise UserError("class_id/per_class need a conditional run (trained with model.conditional=true)")
    if class_id is not None and per_class is not None:
        raise UserError(f"class_id={class_id} and per_class={per_class} are both set: keep one of them")
    if per_class is not None:
        require_positive(per_class, "per_class")
        return torch.arange(generator.num_classes).repeat_interleave(int(per_class))
    if not 0 <= int(class_id) < generator.num_classes:
        raise UserError(f"class_id={class_id} is not a class of this run: pick 0..{generator.num_classes - 1}")
    return torch.full((int(num_samples),), int(class_id), dtype=torch.long)


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    run_cli(generate, cfg)


if __name__ == "__main__":
    refuse_unknown_keys("generate", sys.argv[1:])
    main()
