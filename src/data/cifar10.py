"""CIFAR-10 through torchvision. Offline, it needs the standard archive or its extracted folder in data_dir."""

import contextlib
import io
import pickle
from pathlib import Path
from typing import Any

import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import extract_archive

from src.core.errors import UserError
from src.data.base import ImageDataModule

ARCHIVE = "cifar-10-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class _CIFAR10(CIFAR10):
    """torchvision's CIFAR10, with the per-file md5 check optional (small test files in the real format)."""

    def __init__(self, *args, verify_checksums: bool = True, **kwargs) -> None:
        self.verify_checksums = verify_checksums
        super().__init__(*args, **kwargs)

    def _check_integrity(self) -> bool:
        if self.verify_checksums:
            return super()._check_integrity()
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        if self.verify_checksums:
            return super()._load_meta()
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class CIFAR10DataModule(ImageDataModule):
    name = "CIFAR-10"
    option = "cifar10"
    cache_name = "cifar10"
    native_channels = 3

    def __init__(self, *args, verify_checksums: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verify_checksums = verify_checksums
        if not verify_checksums:  # a cache of unchecked files must never stand in for checked ones
            self.cache_name = "cifar10_unverified"

    @property
    def folder(self) -> Path:
        return self.data_dir / CIFAR10.base_folder

    @property
    def raw_dir(self) -> Path:
        return self.folder

    def ensure_files(self) -> str:
        if self.folder.is_dir():
            return ""
        archive = self.data_dir / ARCHIVE
        if archive.is_file():
            extract_archive(str(archive), str(self.data_dir))
            return f"extracted {archive}"
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                CIFAR10(self.data_dir, train=True, download=True)
            return f"downloaded by torchvision into {self.folder}"
        except (OSError, RuntimeError) as err:
            raise UserError(
                f"CIFAR-10 is not in {self.data_dir} and could not be downloaded ({type(err).__name__}): "
                f"place {ARCHIVE} (from {URL}) at {archive}, or its extracted folder at {self.folder}"
            ) from err

    def make_dataset(self, transform: Any, train: bool = True) -> CIFAR10:
        try:
            return _CIFAR10(self.data_dir, train=train, transform=transform, verify_checksums=self.verify_checksums)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise UserError(
                f"CIFAR-10 files in {self.folder} are incomplete or fail their md5 check: "
                f"replace them with a fresh copy of {ARCHIVE}"
            ) from err

    def decode_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = self.make_dataset(None)  # torchvision unpickles the batches into one uint8 N×H×W×C array
        return torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(dataset.targets)
