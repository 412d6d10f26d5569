"""Fashion-MNIST loads from a Debian-layout folder of IDX .gz files, image folders survive the faults users
have (corrupt, grayscale, nested, non-square files) or fail with one clear line, and CIFAR-10's archive and pickles
are refused in one line, with nothing written or run, when crafted."""

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import FashionMNIST

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data.cifar10 import CIFAR10DataModule
from src.data.fashion_mnist import FashionMNISTDataModule
from src.data.folder import FolderDataModule, ImageFiles
from src.data.synthetic import random_digits, write_cifar10, write_icon_folder, write_idx_gz, write_image_folder
from src.run.compose import compose_config
from tests.conftest import FAST, PicklePayload, run_cli


def fashion(data_dir: Path, source_dir: Path, **kwargs) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(str(data_dir), image_size=28, channels=1, batch_size=8, num_workers=0,
                                  source_dir=str(source_dir), **kwargs)


def folder(path: Path, **kwargs) -> FolderDataModule:
    return FolderDataModule(str(path), **{"image_size": 16, "channels": 3, "batch_size": 4, "num_workers": 0,
                                          **kwargs})


@pytest.mark.parametrize("in_memory", [True, False])
def test_fashion_mnist_from_the_debian_folder(tmp_path: Path, logged, in_memory: bool) -> None:
    debian = write_idx_gz(tmp_path / "usr-share-datasets-fashion-mnist")
    dm = fashion(tmp_path / "data", debian, in_memory=in_memory)
    dm.prepare_data()
    line = logged()
    assert "Debian" in line and str(debian) in line and "\n" not in line
    assert (tmp_path / "data" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    image = dm.example_batch(1)[0, 0]
    expected, _ = random_digits(64, seed=5)  # the first training image write_idx_gz put in the .gz
    assert torch.allclose((image + 1) * 127.5, torch.from_numpy(expected[0]).float(), atol=1e-3)
    logged()
    dm.prepare_data()
    assert logged() == ""  # already in place: nothing to say


def test_fashion_mnist_offline_without_a_source_names_both_remedies(tmp_path: Path, monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(FashionMNIST, "download", offline)
    with pytest.raises(UserError) as err:
        fashion(tmp_path / "data", tmp_path / "no-debian-package").prepare_data()
    message = str(err.value)
    assert "make data-fashion" in message and str(tmp_path / "data" / "FashionMNIST" / "raw") in message
    assert "\n" not in message


def test_image_folder_skips_the_corrupt_file_and_converts_grayscale(tmp_path: Path, logged) -> None:
    root = write_image_folder(tmp_path / "images")  # 10 RGB (png/JPG, nested), 1 gray png, 1 corrupt, 1 txt
    dm = folder(root)
    dm.setup("fit")
    assert f"[data] skipping 1 of 12 image files under {root} that PIL cannot read (first: {root / 'broken.png'})" \
        in logged()
    assert dm.num_images == 11
    assert sorted(set(dm.train_set.labels)) == [0, 1]  # cats / dogs; the flat gray.png gets 0
    gray = dm.train_set[dm.train_set.files.index(root / "gray.png")][0]
    assert gray.shape == (3, 16, 16) and torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    batches = list(dm.train_dataloader())
    assert len(batches) == 11 // 4 and all(x.shape == (4, 3, 16, 16) for x, _ in batches)
    assert all(x.min() >= -1 and x.max() <= 1 for x, _ in batches)


def test_image_folder_resizes_the_shorter_side_and_crops_the_centre(tmp_path: Path) -> None:
    stripes = np.zeros((30, 90, 3), dtype=np.uint8)  # red | green | blue thirds of a wide image
    stripes[:, :30, 0] = stripes[:, 30:60, 1] = stripes[:, 60:, 2] = 255
    Image.fromarray(stripes).save(tmp_path / "wide.png")
    dm = folder(tmp_path, batch_size=1)
    dm.setup("fit")
    image = (dm.train_set[0][0] + 1) / 2
    assert image.shape == (3, 16, 16)
    # only the green third is left; its first and last columns blend with the neighbours
    assert image[1, :, 1:-1].min() > 0.99 and image[0].mean() < 0.05 and image[2].mean() < 0.05


def test_image_folder_in_grayscale(tmp_path: Path, logged) -> None:
    dm = folder(write_image_folder(tmp_path / "images"), channels=1)
    dm.setup("fit")
    assert f"[data] skipping 1 of 12 image files under {tmp_path / 'images'} that PIL cannot read" in logged()
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 16, 16)


def test_a_file_that_breaks_after_the_check_is_replaced_not_fatal(tmp_path: Path, logged) -> None:
    root = write_image_folder(tmp_path / "images")
    files = sorted(root.rglob("*.png"))[:3]
    files[0].write_bytes(files[0].read_bytes()[:60])  # truncated after setup's check
    dataset = ImageFiles(root, files, "RGB")
    image, _ = dataset[0]
    assert f"[data] skipping an image that can't be decoded, {files[0]} (" in logged()
    assert image.size == Image.open(files[1]).size  # the next readable file stands in


def test_images_that_all_break_after_the_check_are_one_line_not_one_per_image(tmp_path: Path, logged) -> None:
    root = write_image_folder(tmp_path / "images")
    files = sorted(root.rglob("*.png"))[:6]
    for path in files:
        path.write_bytes(path.read_bytes()[:60])
    dataset = ImageFiles(root, files, "RGB")
    with pytest.raises(UserError, match=rf"none of the 6 images under {root} can be decoded \(e\.g\. {files[0]}: "):
        [dataset[i] for i in range(6)]
    assert len(logged().splitlines()) == 1  # it said "skipping" for the first file only, not 6 x 6 times


@pytest.mark.parametrize(
    ("make_folder", "message"),
    [(lambda p: p.mkdir(), "no images"), (lambda p: None, "is not a folder"),
     (lambda p: (p.mkdir(), (p / "a.png").write_bytes(b"junk")), "none of the 1 image files")],
)
def test_image_folder_bad_paths_are_one_line_errors(tmp_path: Path, make_folder, message: str) -> None:
    path = tmp_path / "images"
    make_folder(path)
    with pytest.raises(UserError, match=message):
        dm = folder(path)
        dm.prepare_data()
        dm.setup("fit")


def test_data_folder_without_a_path_is_a_one_line_error() -> None:
    cfg = compose_config("train", ["data=folder"])
    with pytest.raises(UserError, match=r"data\.path is required"):
        instantiate(cfg.data)


def test_a_read_only_data_folder_trains_without_the_decoded_cache(tmp_path: Path, monkeypatch, logged) -> None:
    import builtins
    import errno
    import os

    from src.core import atomic_io
    from src.data.mnist import MNISTDataModule
    from src.data.synthetic import write_mnist

    write_mnist(tmp_path)
    real_open = builtins.open

    def read_only_open(path, mode="r", *args, **kwargs):
        if "w" in mode and Path(path).parent == tmp_path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, mode, *args, **kwargs)

    def read_only_unlink(self, missing_ok=False):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(atomic_io, "open", read_only_open, raising=False)  # the cache's temp file
    monkeypatch.setattr(Path, "unlink", read_only_unlink)
    dm = MNISTDataModule(str(tmp_path), image_size=28, channels=1, batch_size=8, num_workers=0)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_images == 64 and not dm.cache_path.exists()
    lines = logged()
    assert "read-only file system" in lines and "continuing without the decoded-data cache" in lines
    assert "[data] MNIST: decoded 64 images (not cached: see the line above)" in lines


def test_the_real_image_grid_of_a_folder_shows_every_class(tmp_path: Path) -> None:
    root = write_icon_folder(tmp_path / "icons", per_class=20, size=16)  # sorted by name: 20 discs come first
    dm = folder(root)
    grid = dm.example_batch(16)
    rows = {tuple(image.flatten().tolist()) for image in grid}
    labels = {dm.train_set.labels[i] for i in range(len(dm.train_set))
              if tuple(dm.train_set[i][0].flatten().tolist()) in rows}
    assert len(grid) == 16 and labels == {0, 1, 2, 3}


def cifar_archive(data_dir: Path, *extra: tuple[str, bytes]) -> Path:
    """cifar-10-python.tar.gz in data_dir: the small real-format files of write_cifar10, then `extra` members."""
    folder = write_cifar10(data_dir / "source")
    archive = data_dir / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
        for name, data in extra:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def cifar(data_dir: Path, **kwargs) -> CIFAR10DataModule:
    return CIFAR10DataModule(str(data_dir), **{"image_size": 32, "channels": 3, "batch_size": 8, "num_workers": 0,
                                               **kwargs})


@pytest.mark.parametrize(("verify", "refusal"), [(True, "is not the original CIFAR-10 archive (md5 "),
                                                 (False, "would be written outside")])
def test_a_cifar_archive_member_that_leaves_the_data_folder_writes_nothing(tmp_path: Path, verify: bool,
                                                                           refusal: str) -> None:
    """md5 first (when checked), then tarfile's data filter: `../` members, links out and devices are refused, and
    nothing of a refused archive is left in the data folder either."""
    data_dir = tmp_path / "a" / "b" / "data"
    data_dir.mkdir(parents=True)
    cifar_archive(data_dir, ("../../../escaped", b"written outside the data folder"))
    with pytest.raises(UserError) as err:
        cifar(data_dir, verify_checksums=verify).prepare_data()
    assert not (tmp_path / "escaped").exists()
    assert refusal in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not (data_dir / "cifar-10-batches-py").exists()
    assert sorted(p.name for p in data_dir.iterdir()) == [".CIFAR-10.lock", "cifar-10-python.tar.gz", "source"]


def test_an_unchecked_cifar_archive_in_the_real_format_is_extracted_and_loads(tmp_path: Path, logged) -> None:
    archive = cifar_archive(tmp_path)
    dm = cifar(tmp_path, verify_checksums=False)
    dm.prepare_data()
    assert f"[data] CIFAR-10: extracted {archive}" in logged()
    dm.setup("fit")
    assert dm.num_images == 5 * 16 and dm.example_batch(4).shape == (4, 3, 32, 32)


@pytest.mark.slow
@pytest.mark.parametrize("crafted", ["data_batch_1", "batches.meta"])
def test_a_crafted_cifar_pickle_is_refused_in_one_line_and_never_run(tmp_path: Path, crafted: str) -> None:
    """data.verify_checksums=false skips the md5 check, not the safety: CIFAR's pickles are read by an unpickler that
    builds arrays, lists and strings only."""
    marker = tmp_path / "pwned"
    folder = write_cifar10(tmp_path / "data")
    (folder / crafted).write_bytes(pickle.dumps(PicklePayload(marker)))
    result = run_cli("src.train", "data=cifar10", "data.verify_checksums=false", "model=mlp_gan", *FAST,
                     f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert not marker.exists()
    error = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and error.startswith(f"Error: {folder / crafted} is not a CIFAR-10 file: its "
                                                       "pickle asks for posix.system"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
