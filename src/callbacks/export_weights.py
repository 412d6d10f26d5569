"""Writes generator.pt and discriminator.pt (plain state dicts) into the run folder when training ends.

generator.pt holds the sampling generator (the EMA of G by default); when that is the EMA, generator_raw.pt holds
the trained G itself."""

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from src.core.atomic_io import atomic_save
from src.core.layout import RunFolder
from src.gan.contract import GANModule


class ExportWeights(L.Callback):
    def __init__(self, output_dir: str) -> None:
        self.run = RunFolder(Path(output_dir))

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        sampling = pl_module.sampling_generator
        atomic_save(sampling.state_dict(), self.run.generator)
        if sampling is not pl_module.generator:
            atomic_save(pl_module.generator.state_dict(), self.run.generator_raw)
        atomic_save(pl_module.discriminator.state_dict(), self.run.discriminator)
