"""CIFAR-10 through torchvision. Offline, it needs the standard archive or its extracted folder in data_dir.

The archive's md5 is checked before it is extracted (data.verify_checksums), its members are extracted with
tarfile's `data` filter (nothing outside data_dir, no links out, no devices) whatever the option, and the batches'
pickles are read by an unpickler that builds arrays, lists and strings only: with the md5 checks off, a crafted file
is refused in one line and runs no code.
"""

import contextlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity, download_url
from torchvision.datasets.vision import VisionDataset

from src.core.errors import UserError
from src.data import safe_pickle
from src.data.base import ImageDataModule
from src.data.checksums import md5_of

ARCHIVE = "cifar-10-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def read_pickle(path: Path) -> Any:
    """One of CIFAR-10's pickles, built without calling anything but numpy's array builders."""
    fresh_copy = f"replace it with a fresh copy of {ARCHIVE}"
    try:
        with open(path, "rb") as f:
            return safe_pickle.load_arrays(f)
    except safe_pickle.RefusedGlobal as err:
        raise UserError(f"{path} is not a CIFAR-10 file: its pickle asks for {err}, which CIFAR-10's arrays, lists "
                        f"and strings never do, so it was not read: {fresh_copy}") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise UserError(f"{path} is not a readable CIFAR-10 file ({type(err).__name__}: {err}): {fresh_copy}") from None


class _CIFAR10(CIFAR10):
    """torchvision's CIFAR10, with the per-file md5 check optional (small test files in the real format) and its
    pickles read by read_pickle."""

    def __init__(self, root: Path, train: bool = True, transform: Any = None, verify_checksums: bool = True) -> None:
        VisionDataset.__init__(self, root, transform=transform)
        self.train = train
        self.verify_checksums = verify_checksums
        if not self._check_integrity():
            raise RuntimeError("Dataset not found or corrupted")
        names = [name for name, _ in (self.train_list if train else self.test_list)]
        batches = [self._read_batch(name) for name in names]
        self.data = np.vstack([batch["data"] for batch in batches]).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        self.targets = [int(label) for batch in batches for label in batch["labels"]]
        self._load_meta()

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.base_folder

    def _read_batch(self, name: str) -> dict:
        batch = read_pickle(self.folder / name)
        data = batch.get("data") if isinstance(batch, dict) else None
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
                or len(batch.get("labels", ())) != len(data):
            raise UserError(f"{self.folder / name} is not a CIFAR-10 batch (a dict of N×3072 'data' and N "
                            f"'labels'): replace it with a fresh copy of {ARCHIVE}")
        return batch

    def _check_integrity(self) -> bool:
        if self.verify_checksums:
            return super()._check_integrity()
        return all((self.folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        path = self.folder / self.meta["filename"]
        if self.verify_checksums and not check_integrity(str(path), self.meta["md5"]):
            raise RuntimeError("Dataset metadata file not found or corrupted")
        meta = read_pickle(path)
        self.classes = meta.get(self.meta["key"]) if isinstance(meta, dict) else None
        if not isinstance(self.classes, list):
            raise UserError(f"{path} is not CIFAR-10's batches.meta (no list of label_names): replace it with a "
                            f"fresh copy of {ARCHIVE}")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def extract(archive: Path, data_dir: Path) -> None:
    """The archive's cifar-10-batches-py/ into data_dir, through tarfile's `data` filter, in a temporary folder
    first: a refused or broken archive leaves nothing behind, inside data_dir or out."""
    staging = Path(tempfile.mkdtemp(prefix=f".{ARCHIVE}.", dir=data_dir))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        extracted = staging / CIFAR10.base_folder
        if not extracted.is_dir():
            raise UserError(f"{archive} holds no {CIFAR10.base_folder}/ folder: it is not {ARCHIVE} (from {URL})")
        os.replace(extracted, data_dir / CIFAR10.base_folder)
    except tarfile.FilterError as err:
        raise UserError(f"{archive} was refused: its member {err.tarinfo.name!r} would be written outside "
                        f"{data_dir} or is a link or device ({type(err).__name__}); nothing was extracted: "
                        f"replace it with {ARCHIVE} from {URL}") from None
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UserError(f"{archive} can't be extracted ({type(err).__name__}: {err}): replace it with {ARCHIVE} "
                        f"from {URL}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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

    def check_archive(self, archive: Path) -> None:
        if not self.verify_checksums:
            return
        digest = md5_of(archive)
        if digest != CIFAR10.tgz_md5:
            raise UserError(f"{archive} is not the original CIFAR-10 archive (md5 {digest}, the original's is "
                            f"{CIFAR10.tgz_md5}), so it was not extracted: replace it with a fresh copy from {URL} "
                            f"(data.verify_checksums=false extracts your own files unchecked)")

    def ensure_files(self) -> str:
        if self.folder.is_dir():
            return ""
        archive = self.data_dir / ARCHIVE
        if archive.is_file():
            self.check_archive(archive)
            extract(archive, self.data_dir)
            return f"extracted {archive}"
        try:  # torchvision checks the download's md5 against the original's before it is kept
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                download_url(URL, str(self.data_dir), ARCHIVE, CIFAR10.tgz_md5)
        except (OSError, RuntimeError) as err:
            raise UserError(
                f"CIFAR-10 is not in {self.data_dir} and could not be downloaded ({type(err).__name__}): "
                f"place {ARCHIVE} (from {URL}) at {archive}, or its extracted folder at {self.folder}"
            ) from err
        extract(archive, self.data_dir)
        return f"downloaded into {archive} and extracted"

    def make_dataset(self, transform: Any, train: bool = True) -> CIFAR10:
        try:
            return _CIFAR10(self.data_dir, train=train, transform=transform, verify_checksums=self.verify_checksums)
        except RuntimeError as err:  # "Dataset not found or corrupted"
            raise UserError(
                f"CIFAR-10 files in {self.folder} are incomplete or fail their md5 check: "
                f"replace them with a fresh copy of {ARCHIVE}"
            ) from err

    def decode_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = self.make_dataset(None)  # one uint8 N×H×W×C array of the unpickled batches
        return torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(dataset.targets)
