"""Writes generator.pt and discriminator.pt (plain state dicts) into the run folder when training ends.

generator.pt holds the sampling generator (the EMA of G by default); when that is the EMA, generator_raw.pt holds
the trained G itself."""

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from src.atomic_io import atomic_save


class ExportWeights(L.Callback):
    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        sampling = pl_module.sampling_generator
        atomic_save(sampling.state_dict(), self.output_dir / "generator.pt")
        if sampling is not pl_module.generator:
            atomic_save(pl_module.generator.state_dict(), self.output_dir / "generator_raw.pt")
        atomic_save(pl_module.discriminator.state_dict(), self.output_dir / "discriminator.pt")
