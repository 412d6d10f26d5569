"""Image folders as data=folder reads them: 16-bit files scaled to 8 bits, decoded once into the folder's store and
then trained on like the built-in sets, the same images as the per-item path."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from src.core.instantiate import instantiate
from src.run.compose import compose_config


def folder_data(folder: Path, store: Path, *overrides: str):
    """data=folder as the app configures it (model.image_size 16, batches of 4), its store under `store`."""
    cfg = compose_config("train", ["data=folder", f"data.path={folder}", f"paths.data_dir={store}",
                                   "model.image_size=16", "data.batch_size=4", "data.num_workers=0", *overrides])
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def epoch_batches(dm, epoch: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of training batches as the model gets them (after the batch-wise transform), on the CPU."""
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [dm.on_after_batch_transfer(batch, 0) for batch in loader]


def write_sixteen_bit(folder: Path) -> np.ndarray:
    """Four 16x16 16-bit grayscale PNGs, a horizontal ramp over the whole 16-bit range (the last with a colour key
    on its darkest value); returns the ramp's 8-bit values."""
    folder.mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    for i in range(3):
        Image.fromarray(ramp).save(folder / f"wide_{i}.png")
    Image.fromarray(ramp).save(folder / "wide_keyed.png", transparency=0)
    return np.round(ramp / 257).astype(np.float32)


@pytest.mark.parametrize("in_memory", ["false"])
def test_sixteen_bit_grayscale_pngs_are_scaled_not_clipped_to_white(tmp_path: Path, in_memory: str) -> None:
    expected = write_sixteen_bit(tmp_path / "wide")
    dm = folder_data(tmp_path / "wide", tmp_path / "store", "data.channels=1", f"data.in_memory={in_memory}")
    (images, _), = epoch_batches(dm)
    levels = (images[:, 0] + 1) * 127.5
    assert levels.shape == (4, 16, 16)
    plain = torch.from_numpy(expected)
    keyed = plain.clone()
    keyed[:, 0] = 255  # the colour-keyed file's darkest column is transparent: composited on white
    close = [[(image - want).abs().max().item() <= 1.01 for want in (plain, keyed)] for image in levels]
    assert sorted(close) == [[False, True], [True, False], [True, False], [True, False]]  # within one 8-bit level
