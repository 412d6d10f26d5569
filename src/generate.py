"""Sample a trained generator: `python -m src.generate ckpt_path=<ckpt or run folder> num_samples=10000`.

Writes samples.png (a grid of the first samples) and samples.npz (key `images`, uint8, N x C x H x W). A conditional
run samples one class (class_id=7) or every class (per_class=N, then samples.npz also holds `labels`)."""

from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from src.gan.sampling import sample_in_batches, save_grid
from src.networks.conditional import ConditionalGenerator
from src.run.checkpoints import load_generator
from src.run.checks import require_positive, require_writable
from src.run.cli import pick_device, run_cli
from src.run.errors import UserError


def generate(cfg: DictConfig) -> Path:
    for key in ("num_samples", "batch_size", "nrow"):
        require_positive(cfg[key], key)
    device = pick_device(str(cfg.device))
    generator, run_cfg, weights, is_ema = load_generator(cfg.ckpt_path, cfg.get("use_ema"))
    out = Path(cfg.output_dir) if cfg.output_dir else weights.parent
    require_writable(out, "output_dir", "output_dir=samples")
    generator.to(device)
    z_dim = int(run_cfg.model.z_dim)
    labels = requested_labels(cfg, generator)
    num_samples = cfg.num_samples if labels is None else len(labels)

    first = next(sample_in_batches(generator, 1, z_dim, 1, device, cfg.seed, labels))
    images = np.empty((num_samples, *first.shape[1:]), dtype=np.uint8)
    start = 0
    for batch in sample_in_batches(generator, num_samples, z_dim, cfg.batch_size, device, cfg.seed, labels):
        images[start : start + len(batch)] = batch.numpy()
        start += len(batch)

    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "samples.npz", images=images, **({} if labels is None else {"labels": labels.numpy()}))
    if cfg.get("per_class"):  # one row per class, its first nrow samples
        nrow = min(int(cfg.per_class), cfg.nrow)
        shown = [c * cfg.per_class + j for c in range(generator.num_classes) for j in range(nrow)]
    else:
        nrow, shown = cfg.nrow, list(range(min(num_samples, cfg.nrow * cfg.nrow)))
    save_grid(torch.from_numpy(images[shown]).float() / 127.5 - 1, out / "samples.png", nrow)
    which = "EMA" if is_ema else "raw"
    classes = "" if labels is None else (f" of class {cfg.class_id}" if cfg.class_id is not None else
                                          f" ({cfg.per_class} of each of {generator.num_classes} classes)")
    print(f"wrote {num_samples} samples{classes} of the {which} generator in {weights} to {out}/samples.npz and "
          "samples.png")
    return out


def requested_labels(cfg: DictConfig, generator: torch.nn.Module) -> torch.Tensor | None:
    """The class of every sample asked for by class_id= or per_class= (None: a conditional G picks its own labels in
    proportion to the real class shares; an unconditional G takes none)."""
    class_id, per_class = cfg.get("class_id"), cfg.get("per_class")
    if class_id is None and per_class is None:
        return None
    if not isinstance(generator, ConditionalGenerator):
        raise UserError("class_id/per_class need a conditional run (trained with model.conditional=true)")
    if class_id is not None and per_class is not None:
        raise UserError(f"class_id={class_id} and per_class={per_class} are both set: keep one of them")
    if per_class is not None:
        require_positive(per_class, "per_class")
        return torch.arange(generator.num_classes).repeat_interleave(int(per_class))
    if not 0 <= int(class_id) < generator.num_classes:
        raise UserError(f"class_id={class_id} is not a class of this run: pick 0..{generator.num_classes - 1}")
    return torch.full((int(cfg.num_samples),), int(class_id), dtype=torch.long)


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    run_cli(generate, cfg)


if __name__ == "__main__":
    main()
