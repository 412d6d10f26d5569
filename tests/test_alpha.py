"""Image folders with transparency: every transparent pixel reaches the model as `data.background`, never as the colour
the file hides there; `data.keep_alpha=true` trains on RGBA and writes grids and samples with alpha."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data.synthetic import write_icon_folder
from src.run.compose import compose_config
from tests.conftest import run_cli

LOUD = (255, 0, 255)  # what the files hide under their transparent pixels
SHOWN = (10, 200, 30)  # the visible half
SIZE = 16


def write_transparent(folder: Path) -> dict[str, Path]:
    """16x16 files: the left half fully transparent over LOUD, the right half opaque SHOWN, in each way PNG stores
    transparency."""
    folder.mkdir(parents=True, exist_ok=True)
    left = np.zeros((SIZE, SIZE), bool)
    left[:, : SIZE // 2] = True
    rgb = np.where(left[..., None], np.array(LOUD, np.uint8), np.array(SHOWN, np.uint8)).astype(np.uint8)
    alpha = np.where(left, 0, 255).astype(np.uint8)
    files = {}
    files["RGBA"] = folder / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(files["RGBA"])
    files["LA"] = folder / "la.png"
    grey = Image.fromarray(rgb).convert("L")
    Image.merge("LA", (grey, Image.fromarray(alpha))).save(files["LA"])
    files["P"] = folder / "palette.png"
    palette = Image.fromarray((~left).astype(np.uint8), "P")
    palette.putpalette([*LOUD, *SHOWN] + [0] * 254 * 3)
    palette.save(files["P"], transparency=0)
    files["P alpha table"] = folder / "palette_alpha_table.png"  # PIL warns when convert("RGB") meets this one
    palette.save(files["P alpha table"], transparency=bytes([0, 255]))
    files["RGB colour key"] = folder / "colour_key.png"
    Image.fromarray(rgb).save(files["RGB colour key"], transparency=LOUD)
    return files


def folder_data(path: Path, *overrides: str):
    """The per-item dataset (tests/test_data_folder.py holds the decoded path to it)."""
    cfg = compose_config("train", ["data=folder", f"data.path={path}", f"model.image_size={SIZE}",
                                   "data.num_workers=0", "data.batch_size=1", "data.in_memory=false", *overrides])
    return instantiate(cfg.data)


def as_level(rgb: tuple[int, int, int], channels: int) -> torch.Tensor:
    """A colour as the loader's normalised values ([-1, 1]), in grayscale by PIL's formula for one channel."""
    if channels == 1:
        rgb = (Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0)),)
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize(("background", "override"), [((255, 255, 255), None), ((0, 0, 0), "black"),
                                                      ((0, 255, 0), "[0,255,0]"), ((18, 52, 86), "'#123456'")])
@pytest.mark.filterwarnings("error")  # PIL's palette-transparency warning must not reach the user
def test_transparent_pixels_load_as_the_background_never_as_the_hidden_colour(
    tmp_path: Path, channels: int, background: tuple[int, int, int], override: str | None
) -> None:
    files = write_transparent(tmp_path / "images")
    extra = [f"data.channels={channels}"] + ([f"data.background={override}"] if override else [])
    dm = folder_data(tmp_path / "images", *extra)
    dm.setup("fit")
    dataset = dm.train_set
    for kind, path in files.items():
        image = dataset[dataset.files.index(path)][0]
        assert image.shape == (channels, SIZE, SIZE)
        left, right = image[:, :, : SIZE // 2], image[:, :, SIZE // 2:]
        expected = as_level(background, channels)[:, None, None].expand_as(left)
        torch.testing.assert_close(left, expected, atol=1e-6, rtol=0, msg=f"{kind}: transparent pixels")
        shown = SHOWN if kind != "LA" else (Image.new("RGB", (1, 1), SHOWN).convert("L").getpixel((0, 0)),) * 3
        torch.testing.assert_close(right, as_level(shown, channels)[:, None, None].expand_as(right), atol=1e-6,
                                   rtol=0, msg=f"{kind}: opaque pixels")
        loud = as_level(LOUD, channels)[:, None, None]
        assert not (image - loud).abs().amax(0).lt(0.02).any(), f"{kind}: the hidden colour reached the model"


def test_keep_alpha_trains_on_rgba_with_the_hidden_colour_replaced(tmp_path: Path) -> None:
    files = write_transparent(tmp_path / "images")
    Image.new("RGB", (SIZE, SIZE), SHOWN).save(tmp_path / "images" / "opaque.png")
    dm = folder_data(tmp_path / "images", "data.keep_alpha=true", "data.background=black")
    assert dm.channels == 4
    dm.setup("fit")
    for kind, path in files.items():
        image = dm.train_set[dm.train_set.files.index(path)][0]
        assert image.shape == (4, SIZE, SIZE)
        torch.testing.assert_close(image[:, :, : SIZE // 2], torch.full((4, SIZE, SIZE // 2), -1.0), msg=kind)
        assert image[3, :, SIZE // 2:].eq(1).all(), kind  # opaque where the file is
    opaque = dm.train_set[dm.train_set.files.index(tmp_path / "images" / "opaque.png")][0]
    assert opaque[3].eq(1).all()  # a file without alpha is fully opaque


def test_the_start_of_a_run_says_how_many_images_had_transparency(tmp_path: Path, logged) -> None:
    root = write_icon_folder(tmp_path / "icons", per_class=3, size=SIZE)
    Image.new("RGB", (SIZE, SIZE), SHOWN).save(root / "disc" / "opaque.png")
    folder_data(root).setup("fit")
    assert logged() == (f"[data] image folder: 13 images in 4 classes under {root}; 12 with transparency, "
                        "composited on white")


@pytest.mark.parametrize(("override", "message"), [
    ("data.background=banana", r"data\.background=banana is not a colour: use a name"),
    ("data.background=[0,300,0]", r"data\.background=\[0, 300, 0\] is not a colour"),
    ("data.background=[0,0]", r"data\.background=\[0, 0\] is not a colour"),
    ("data.channels=4", r"data\.channels=4 is RGBA: set data\.keep_alpha=true instead"),
    ("data.keep_alpha=yes", r"data\.keep_alpha must be true or false, got yes"),
])
def test_impossible_alpha_settings_are_one_line(tmp_path: Path, override: str, message: str) -> None:
    write_transparent(tmp_path / "images")
    with pytest.raises(UserError, match=message):
        folder_data(tmp_path / "images", override)


def test_keep_alpha_with_grayscale_is_refused(tmp_path: Path) -> None:
    write_transparent(tmp_path / "images")
    with pytest.raises(UserError, match=r"data\.keep_alpha=true trains on RGBA images \(4 channels\), but "
                                        r"data\.channels=1: drop data\.channels="):
        folder_data(tmp_path / "images", "data.keep_alpha=true", "data.channels=1")


@pytest.mark.slow  # starts a process
def test_an_rgba_run_writes_grids_and_samples_with_alpha(tmp_path: Path) -> None:
    root = write_icon_folder(tmp_path / "icons", per_class=4, size=SIZE)
    run = tmp_path / "run"
    trained = run_cli("src.train", "model=mlp_gan", "model.generator.width=8", f"data.path={root}", "data=folder",
                      "data.keep_alpha=true", "data.batch_size=4", "data.num_workers=0", "max_batches=2",
                      "sample_every_n_batches=1", "~callbacks.progress_bar", f"hydra.run.dir={run}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert Image.open(run / "samples" / "batch_0000002.png").mode == "RGBA"
    made = run_cli("src.generate", f"ckpt_path={run}", "num_samples=8")
    assert made.returncode == 0, made.stderr[-3000:]
    assert Image.open(run / "samples.png").mode == "RGBA"
    assert np.load(run / "samples.npz")["images"].shape[1] == 4

