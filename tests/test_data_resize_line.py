"""The [data] line of an image folder says when its images are resized to model.image_size (#37 item 7)."""

from pathlib import Path

import pytest

from src.core.instantiate import instantiate
from src.data.synthetic import write_icon_folder, write_image_folder
from src.run.compose import compose_config


def data_line(path: Path, size: int, logged) -> str:
    cfg = compose_config("train", ["data=folder", f"data.path={path}", f"model.image_size={size}",
                                   "data.num_workers=0", "data.in_memory=false", "data.batch_size=2"])
    logged()
    instantiate(cfg.data).setup("fit")
    (line,) = [line for line in logged().splitlines() if line.startswith("[data] image folder: ")]
    return line


@pytest.mark.parametrize(("size", "said"), [(32, "; 64x64 px, resized to 32x32 (model.image_size); 100 with "),
                                            (64, " under {root}; 100 with transparency")])
def test_icons_of_64_px_are_said_to_be_resized_to_32(tmp_path: Path, logged, size: int, said: str) -> None:
    root = write_icon_folder(tmp_path / "icons", size=64)
    assert said.format(root=root) in data_line(root, size, logged)


def test_images_of_many_sizes_are_said_to_be_cropped(tmp_path: Path, logged) -> None:
    root = write_image_folder(tmp_path / "images", per_class=10)
    line = data_line(root, 16, logged)
    assert "px (sampled), resized by the shorter side and centre-cropped to 16x16 (model.image_size)" in line, line
