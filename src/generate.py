"""Sample a trained generator: `python -m src.generate ckpt_path=<ckpt or run folder> num_samples=10000`.

Writes samples.png (a grid of the first samples) and samples.npz (key `images`, uint8, N x C x H x W)."""

from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from src.gan.sampling import sample_in_batches, save_grid
from src.run.checkpoints import load_generator
from src.run.checks import require_positive, require_writable
from src.run.cli import pick_device, run_cli


def generate(cfg: DictConfig) -> Path:
    for key in ("num_samples", "batch_size", "nrow"):
        require_positive(cfg[key], key)
    device = pick_device(str(cfg.device))
    generator, run_cfg, weights, is_ema = load_generator(cfg.ckpt_path, cfg.get("use_ema"))
    out = Path(cfg.output_dir) if cfg.output_dir else weights.parent
    require_writable(out, "output_dir", "output_dir=samples")
    generator.to(device)
    z_dim = int(run_cfg.model.z_dim)

    first = next(sample_in_batches(generator, 1, z_dim, 1, device, cfg.seed))
    images = np.empty((cfg.num_samples, *first.shape[1:]), dtype=np.uint8)
    start = 0
    for batch in sample_in_batches(generator, cfg.num_samples, z_dim, cfg.batch_size, device, cfg.seed):
        images[start : start + len(batch)] = batch.numpy()
        start += len(batch)

    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "samples.npz", images=images)
    preview = torch.from_numpy(images[: cfg.nrow * cfg.nrow]).float() / 127.5 - 1
    save_grid(preview, out / "samples.png", cfg.nrow)
    which = "EMA" if is_ema else "raw"
    print(f"wrote {cfg.num_samples} samples of the {which} generator in {weights} to {out}/samples.npz and samples.png")
    return out


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    run_cli(generate, cfg)


if __name__ == "__main__":
    main()
