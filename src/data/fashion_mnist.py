"""Fashion-MNIST through torchvision. Offline source: Debian's `dataset-fashion-mnist` (`make data-fashion`)."""

import gzip
import shutil
from pathlib import Path

from torchvision.datasets import FashionMNIST

from src.core.atomic_io import atomic_write
from src.core.errors import UserError
from src.data.mnist import ORIGINAL_SIZES, RAW_FILES, MNISTDataModule

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
# md5 of the original uncompressed files (torchvision checks the .gz files it downloads; Debian's are recompressed).
FASHION_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def unpack_gz(source: Path, target: Path) -> None:
    """Decompress source into target atomically: a partly written file never looks complete."""
    with gzip.open(source, "rb") as fin:
        atomic_write(target, lambda fout: shutil.copyfileobj(fin, fout))


class FashionMNISTDataModule(MNISTDataModule):
    name = "Fashion-MNIST"
    option = "fashion_mnist"
    cache_name = "fashion_mnist"
    torchvision_class = FashionMNIST
    known_files = {name: (ORIGINAL_SIZES[name], md5) for name, md5 in FASHION_MD5.items()}

    def __init__(self, *args, source_dir: str = DEBIAN_DIR, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.source_dir = Path(source_dir)

    @property
    def restore_hint(self) -> str:
        return f"delete it and run again: it is unpacked again from {self.source_dir} (make data-fashion) or downloaded"

    def unpack_from(self, folder: Path) -> bool:
        """Unpack the four IDX .gz files found in folder into torchvision's raw layout; False if any is missing."""
        sources = [folder / f"{name}.gz" for name in RAW_FILES]
        if not all(p.is_file() for p in sources):
            return False
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        for source, name in zip(sources, RAW_FILES, strict=True):
            unpack_gz(source, self.raw_dir / name)
        return True

    def ensure_files(self) -> str:
        if self.has_raw_files():
            return ""
        if self.unpack_from(self.raw_dir):
            return f"unpacked the IDX .gz files in {self.raw_dir}"
        if self.unpack_from(self.source_dir):
            return f"offline: using Debian's dataset-fashion-mnist files from {self.source_dir} (unpacked into " \
                   f"{self.raw_dir})"
        if self.download():
            return f"downloaded by torchvision into {self.raw_dir}"
        raise UserError(
            f"Fashion-MNIST is not in {self.raw_dir} and could not be downloaded: run `make data-fashion` "
            f"(apt-get install dataset-fashion-mnist, files in {self.source_dir}), or put the four IDX .gz files "
            f"({', '.join(f + '.gz' for f in RAW_FILES)}) in {self.raw_dir}"
        )
