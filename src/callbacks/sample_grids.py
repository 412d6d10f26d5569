"""Fixed-noise sample grids: to every logger that takes images (src/callbacks/loggers.py) and to samples/*.png every
N batches, and a GIF at the end. A grid is sampled at its batch; encoding and writing it go on off the training
thread (src/callbacks/in_order.py; MLflow's excepted, see loggers.image_loggers), and are waited for before the GIF is
made.

The grids come from the module's sampling generator (the EMA of G when it is on and model.sample_with_ema). A
conditional model's grid has one row per class, with the same noise down each column."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from src.callbacks.in_order import InOrder
from src.callbacks.loggers import image_loggers, log_image
from src.core.layout import RunFolder
from src.core.loop import at_epoch_end
from src.gan.contract import GANModule
from src.gan.sampling import grid, pixels, png, sample, save_gif, save_picture


class SampleGrids(L.Callback):
    def __init__(self, output_dir: str, every_n_batches: int = 500, nrow: int = 8, gif_ms_per_frame: int = 300) -> None:
        run = RunFolder(Path(output_dir))
        self.samples_dir, self.gif_path = run.samples, run.gif
        self.every_n_batches = every_n_batches
        self.nrow = nrow
        self.gif_ms_per_frame = gif_ms_per_frame
        self.writer = InOrder()

    def _snapshot(self, trainer: L.Trainer, pl_module: GANModule, png_name: str | None) -> None:
        """The grid is sampled now (the weights of this batch); encoding and writing it happen off the training
        thread."""
        images = sample(pl_module.sampling_generator, pl_module.fixed_noise, pl_module.fixed_labels)
        picture = grid(images, pl_module.grid_columns or self.nrow).cpu()  # conditional: one row per class
        path = self.samples_dir / png_name if png_name is not None else None
        self._write(trainer, "samples/fixed_noise", picture, pl_module.batches_done, path)

    def _write(self, trainer: L.Trainer, tag: str, picture: torch.Tensor, step: int, path: Path | None) -> None:
        array, (here, elsewhere) = pixels(picture), image_loggers(trainer)
        log_image(here, tag, picture, step)  # MLflow's: see image_loggers

        def write() -> None:
            encoded = png(array)  # once, for the file and TensorBoard
            log_image(elsewhere, tag, picture, step, encoded)
            if path is not None:
                save_picture(picture, path, encoded)

        self.writer.submit(write)

    @rank_zero_only
    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        datamodule = trainer.datamodule
        step, (here, elsewhere) = pl_module.batches_done, image_loggers(trainer)
        if step == 0 and (here or elsewhere) and hasattr(datamodule, "example_batch"):
            real = grid(datamodule.example_batch(pl_module.fixed_noise.size(0)), self.nrow)
            self._write(trainer, "samples/real", real, 0, None)
        # A resumed run re-logs the grid of its first step too: TensorBoard drops the killed run's points from there.
        due = step == 0 or (self.every_n_batches > 0 and step % self.every_n_batches == 0)
        self._snapshot(trainer, pl_module, f"batch_{step:07d}.png" if due else None)

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.batches_done
        if self.every_n_batches > 0 and step % self.every_n_batches == 0:
            self._snapshot(trainer, pl_module, f"batch_{step:07d}.png")

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if at_epoch_end(trainer):  # not for an epoch the budget or a stop cut short: it goes on when resumed
            self._snapshot(trainer, pl_module, f"epoch_{trainer.current_epoch:03d}.png")

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        """The last batch gets its grid (the GIF's last frame); the GIF is built from the PNGs on disk, so a resumed
        run's GIF covers the whole training."""
        last = f"batch_{pl_module.batches_done:07d}.png"
        self.writer.wait()
        if not (self.samples_dir / last).is_file():
            self._snapshot(trainer, pl_module, last)
            self.writer.wait()
        paths = sorted(self.samples_dir.glob("batch_*.png"))
        if not paths:
            return
        save_gif([Image.open(p).convert("RGB") for p in paths], self.gif_path, self.gif_ms_per_frame)

    def on_exception(self, trainer: L.Trainer, pl_module: GANModule, exception: BaseException) -> None:
        self.writer.wait(raise_errors=False)  # the grids sampled before the failure still land; its error is the one

    def teardown(self, trainer: L.Trainer, pl_module: GANModule, stage: str) -> None:
        self.writer.close()
