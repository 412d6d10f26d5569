"""Any folder of images (nested or flat, with or without class subfolders): how a user trains on their own domain."""

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from src.core.atomic_io import human_size
from src.core.commands import override
from src.core.errors import UserError
from src.data.alpha import background_colour, flatten, has_alpha
from src.data.base import ImageDataModule
from src.data.decoded_cache import DecodedCache, cache_key, decode_all, load_or_build
from src.data.lock import exclusive

log = logging.getLogger(__name__)

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # PIL's modes of 16-bit grayscale PNGs and TIFFs


def find_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def class_folders(root: Path, files: list[Path]) -> list[str]:
    """The classes of an image folder: its top-level subfolders that hold images (none when the images are flat)."""
    return sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})


@functools.cache
def count_classes(path: str) -> int:
    """Resolver `${folder_classes:<data.path>}` (data.num_classes of data=folder): 1 for a flat folder, 0 when the
    folder is missing (the DataModule then says so in its own words)."""
    root = Path(path)
    return max(1, len(class_folders(root, find_images(root)))) if root.is_dir() else 0


def probe(path: Path) -> bool | None:
    """None when PIL can't parse the file (header, and chunk CRCs for PNG), else whether it can hold transparent
    pixels; a cheap check that decodes no pixels."""
    try:
        with Image.open(path) as image:
            transparent = has_alpha(image)
            image.verify()
        return transparent
    except Exception:  # PIL raises many types for broken files (OSError, SyntaxError, ValueError, struct.error...)
        return None


def resize_note(files: list[Path], size: int, sampled: int = 25) -> str:
    """What training does to the images' size, from the headers of a few files spread over the folder (no pixel is
    decoded): '' when they are already size x size."""
    found = set()
    for path in files[:: max(1, len(files) // sampled)][:sampled]:
        try:
            with Image.open(path) as image:
                found.add(image.size)
        except Exception:  # probe() read it; a file changed since is reported where it is decoded
            continue
    if not found or found == {(size, size)}:
        return ""
    target = f"{size}x{size} (model.image_size)"
    if len(found) == 1 and len(set(*found)) == 1:
        return f"; {'x'.join(map(str, *found))} px, resized to {target}"
    sides = sorted(side for dims in found for side in dims)
    shown = f"{'x'.join(map(str, *found))} px" if len(found) == 1 else f"sides of {sides[0]}-{sides[-1]} px (sampled)"
    return f"; {shown}, resized by the shorter side and centre-cropped to {target}"


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image scaled to 8 bits ("L"; "LA" when a colour key marks its transparent pixels);
    others as they are. PIL's own convert() clips every value above 255, which turns nearly all of a 16-bit
    image white."""
    if image.mode not in WIDE_GREY:
        return image
    values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    grey = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    key = image.info.get("transparency")
    if not isinstance(key, int):
        return grey
    return Image.merge("LA", (grey, Image.fromarray(np.where(values == key, 0, 255).astype(np.uint8), "L")))


def read_image(path: Path, mode: str, background: tuple[int, int, int]) -> Image.Image:
    """A file as the model sees it before resizing: 8 bits, composited onto `background` (alpha kept for RGBA),
    converted to `mode`."""
    with Image.open(path) as image:
        return flatten(eight_bit(image), background, keep_alpha=mode == "RGBA").convert(mode)


class DecodeFile:
    """path -> uint8 C×H×W as the per-item path gives it before ToTensor: read_image, the shorter side resized to
    `size`, centre-cropped (the same torchvision steps); picklable, for a process pool."""

    def __init__(self, size: int, mode: str, background: tuple[int, int, int]) -> None:
        self.mode, self.background = mode, background
        self.resize = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size)])

    def __call__(self, path: Path) -> np.ndarray:
        pixels = np.asarray(self.resize(read_image(path, self.mode, self.background)))
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def decode_folder(root: Path, files: list[Path], size: int, channels: int,
                  background: tuple[int, int, int] = (255, 255, 255), out: np.ndarray | None = None,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`files` of the folder `root` decoded as data=folder trains on them: (uint8 N×C×H×W, filled into `out` when
    given, e.g. a memory-mapped file; int64 labels, the index of each file's class subfolder). A process pool with a
    progress bar; a file that fails to decode takes the next readable one's image and label, as ImageFiles does.
    `channels`: 1 (L), 3 (RGB) or 4 (RGBA, the alpha kept)."""
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    if out is None:
        out = np.empty((len(files), channels, size, size), np.uint8)
    labels = np.asarray(ImageFiles(root, files, mode).labels, dtype=np.int64)
    failed = decode_all(DecodeFile(size, mode, background), files, out, root.name, workers)
    if len(failed) == len(files):
        raise UserError(f"none of the {len(files)} images under {root} can be decoded (e.g. {failed[0]}): replace "
                        "or remove the broken files")
    if failed:
        log.warning(f"[data] {len(failed)} images can't be decoded (first: {failed[min(failed)]}): each is replaced "
                    "by the next readable one")
    for index in failed:
        after = next(i % len(files) for i in range(index + 1, index + len(files)) if i % len(files) not in failed)
        out[index], labels[index] = out[after], labels[after]
    return out, labels


class ImageFiles(Dataset):
    """Images converted to `mode` ("RGB", "L" or "RGBA"), those with transparency first composited onto `background`
    (src/data/alpha.py); label = index of the top-level subfolder (0 when flat).

    A file that passed the setup check but still fails to decode (e.g. a truncated JPEG) is replaced by the next
    readable one, so a bad file never stops an epoch; the first such file is named in one line (per loader process),
    later ones are skipped quietly.
    """

    def __init__(self, root: Path, files: list[Path], mode: str, transform: Callable | None = None,
                 background: tuple[int, int, int] = (255, 255, 255)) -> None:
        self.root, self.files, self.mode, self.transform = root, files, mode, transform
        self.background = background
        classes = {name: i for i, name in enumerate(class_folders(root, files))}
        top = [p.relative_to(root).parts for p in files]
        self.labels = [classes[parts[0]] if len(parts) > 1 else 0 for parts in top]
        self.undecodable: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> Image.Image:
        return read_image(self.files[index], self.mode, self.background)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        first_error = None
        for offset in range(len(self.files)):
            i = (index + offset) % len(self.files)
            if i in self.undecodable:
                continue
            try:
                image = self.load(i)
            except Exception as err:  # see probe
                first_error = first_error or f"{self.files[i]}: {err}"
                if not self.undecodable:
                    log.warning(f"[data] skipping an image that can't be decoded, {self.files[i]} ({err}); any "
                                "others are skipped without a line")
                self.undecodable.add(i)
                continue
            return (self.transform(image) if self.transform else image), self.labels[i]
        raise UserError(f"none of the {len(self.files)} images under {self.root} can be decoded"
                        f"{f' (e.g. {first_error})' if first_error else ''}: replace or remove the broken files")


def store_dir(data_dir: str, path: str) -> str:
    """Resolver `${folder_store:<paths.data_dir>,<data.path>}` (data.store_dir): where an image folder's domain
    classifier and cached real statistics go, data_dir/image_folders/<its name>-<hash of where it is>, not inside
    the user's images."""
    root = Path(path).expanduser().resolve()
    return str(Path(data_dir) / "image_folders" / f"{root.name}-{hashlib.sha1(str(root).encode()).hexdigest()[:8]}")


def held_out(root: Path, files: list[Path], share: float) -> set[Path]:
    """The test split: `share` of each class's images (of all images in a flat folder), evenly spread over the
    sorted file names, so it is the same on every machine and every run; a class of one image keeps it for training."""
    by_class: dict[str, list[Path]] = {}
    for path in files:
        parts = path.relative_to(root).parts
        by_class.setdefault(parts[0] if len(parts) > 1 else "", []).append(path)
    test = set()
    for members in by_class.values():
        count = min(round(len(members) * share), len(members) - 1)
        test.update(members[int((i + 0.5) * len(members) / count)] for i in range(count))
    return test


class FolderDataModule(ImageDataModule):
    """In memory (data=folder's default, data.in_memory=true): every image decoded once at the model's size into the
    folder's store (src/data/decoded_cache.py), then batches by indexing as for the built-in sets; per item
    (`in_memory=False`, or when the store can't hold the cache): decoded, resized and centre-cropped in DataLoader
    workers. The GAN trains on every image; `test_share` of each class is also the test split, which a domain
    classifier is tested on and does not learn from."""

    name = "image folder"
    option = "folder"
    cache_name = "folder"

    def __init__(self, path: str, image_size: int, channels: int = 3, in_memory: bool = False,
                 test_share: float = 0.1, store_dir: str | None = None, background: str | Sequence[int] = "white",
                 keep_alpha: bool = False, **kwargs) -> None:
        if not isinstance(keep_alpha, bool):
            raise UserError(f"data.keep_alpha must be true or false, got {keep_alpha}")
        if keep_alpha and channels != 4:
            raise UserError(f"data.keep_alpha=true trains on RGBA images (4 channels), but data.channels={channels}: "
                            "drop data.channels= (it follows data.keep_alpha)")
        if channels == 4 and not keep_alpha:
            raise UserError("data.channels=4 is RGBA: set data.keep_alpha=true instead (and drop data.channels=)")
        self.keep_alpha = keep_alpha
        super().__init__(data_dir=path, image_size=image_size, channels=channels, in_memory=in_memory, **kwargs)
        if not 0 <= test_share < 1:
            raise UserError(f"data.test_share must be at least 0 and below 1, got {test_share}")
        self.native_channels = channels  # PIL's convert() gives the asked mode; no Grayscale step needed
        self.test_share = test_share
        self._store_dir = Path(store_dir) if store_dir else None
        self.background = background_colour(background)
        self.background_name = background if isinstance(background, str) else str(list(self.background))
        self._readable: list[Path] | None = None

    @property
    def channel_options(self) -> dict[int, str]:
        return {4: "RGBA"} if self.keep_alpha else super().channel_options

    @property
    def store_dir(self) -> Path:
        return self._store_dir or super().store_dir

    @property
    def command_line(self) -> str:
        return f"data=folder {override('data.path', self.data_dir)}"

    @property
    def channels_command(self) -> str:
        return "data.keep_alpha=true" if self.keep_alpha else super().channels_command

    def ensure_files(self) -> str:
        if not self.data_dir.is_dir():
            raise UserError(f"data.path={self.data_dir} is not a folder: point it at a folder of images")
        return ""

    def preparing(self) -> AbstractContextManager:
        """Nothing is written while the folder is prepared (the decoded cache has its own lock, decoding())."""
        return nullcontext()

    @property
    def decoded_dir(self) -> Path:
        """Where the decoded cache goes: the folder's store, never inside the user's images."""
        return (self._store_dir or Path(store_dir("data", str(self.data_dir)))) / "decoded"

    def decoding(self) -> AbstractContextManager:
        """The lock held while the decoded cache is built: processes (DDP ranks) starting together decode once."""
        return exclusive(self.decoded_dir / ".lock", f"the decoded images of {self.data_dir}")

    def decoded_cache(self) -> DecodedCache:
        """This folder's cache at this image size, mode and background; its key stats every image file."""
        self.ensure_files()
        settings = {"image_size": self.image_size, "mode": self.mode, "background": list(self.background)}
        key = cache_key(self.data_dir, find_images(self.data_dir), settings)
        stem = f"decoded_{self.image_size}px_{self.mode.lower()}_on_{bytes(self.background).hex()}"
        return DecodedCache(self.decoded_dir, stem, key)

    def load_decoded(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        decoded = load_or_build(self.decoded_cache(), self._decoded_shape, self._decode_into, self.decoding)
        if decoded is None:
            return None
        self.mapped = decoded.mapped
        size = human_size(decoded.images.nbytes)
        how = "memory-mapped (larger than half the free memory)" if decoded.mapped else "in memory"
        if decoded.built:
            log.info(f"[data] image folder: decoded {len(decoded.images)} images once into {decoded.path} ({size}); "
                     f"training reads them {how}")
        else:
            classes = len(np.unique(decoded.labels))
            grouped = f"{classes} classes" if classes > 1 else "1 class"
            log.info(f"[data] image folder: {len(decoded.images)} images in {grouped} under {self.data_dir}, decoded "
                     f"once in {decoded.path} ({size}, {how})")
        return torch.from_numpy(decoded.images), torch.from_numpy(decoded.labels)

    def _decoded_shape(self) -> tuple[int, int, int, int]:
        return len(self.readable_files()), self.channels, self.image_size, self.image_size

    def _decode_into(self, out: np.ndarray) -> np.ndarray:
        return decode_folder(self.data_dir, self.readable_files(), self.image_size, self.channels, self.background,
                             out)[1]

    def make_dataset(self, transform: Callable | None, train: bool = True) -> ImageFiles:
        readable = self.readable_files()
        if train:
            return self.image_files(readable, transform)
        test = held_out(self.data_dir, readable, self.test_share)
        if not test:
            raise UserError(f"data.test_share={self.test_share} holds out no image of data.path={self.data_dir} as "
                            "a test split: raise it (e.g. data.test_share=0.1)")
        return self.image_files([p for p in readable if p in test], transform)

    def classifier_dataset(self, transform: Callable | None) -> ImageFiles:
        readable = self.readable_files()
        test = held_out(self.data_dir, readable, self.test_share)
        return self.image_files([p for p in readable if p not in test], transform)

    def image_files(self, paths: list[Path], transform: Callable | None) -> ImageFiles:
        return ImageFiles(self.data_dir, paths, self.mode, transform, self.background)

    def example_batch(self, n: int = 64) -> torch.Tensor:
        """n images drawn at random (seeded by data.seed): a folder's files sort by class and name, so its first n
        would show one class."""
        if (self.images if self.in_memory else self.train_set) is None:
            self.setup("fit")
        picked = torch.randperm(self.num_images, generator=torch.Generator().manual_seed(self.seed))[:n]
        if self.in_memory:
            return self.batch_transform(self.images.index_select(0, picked.to(self.images.device)).cpu())
        return torch.stack([self.train_set[i][0] for i in picked.tolist()])

    @property
    def mode(self) -> str:
        return {1: "L", 3: "RGB", 4: "RGBA"}[self.channels]

    def readable_files(self) -> list[Path]:
        """The images PIL can read, checked once; one [data] line says how many, in how many classes, and how many
        can hold transparent pixels (and what they are composited on)."""
        if self._readable is not None:
            return self._readable
        self.ensure_files()
        files = find_images(self.data_dir)
        if not files:
            raise UserError(
                f"no images ({', '.join(EXTENSIONS)}) under data.path={self.data_dir}: point it at a folder of images"
            )
        readable, skipped, transparent = [], [], 0
        for path in files:
            found = probe(path)
            (skipped if found is None else readable).append(path)
            transparent += bool(found)
        if not readable:
            raise UserError(f"none of the {len(files)} image files under {self.data_dir} can be read by PIL")
        if skipped:
            log.warning(f"[data] skipping {len(skipped)} of {len(files)} image files under {self.data_dir} that PIL "
                        f"cannot read (first: {skipped[0]})")
        classes = len(class_folders(self.data_dir, readable))
        kept = "their alpha kept, fully transparent pixels" if self.keep_alpha else "composited"
        alpha = f"; {transparent} with transparency, {kept} on {self.background_name}" if transparent else ""
        grouped = f"in {classes} classes" if classes else "(no class subfolders)"
        resized = resize_note(readable, self.image_size)
        log.info(f"[data] image folder: {len(readable)} images {grouped} under {self.data_dir}{resized}{alpha}")
        self._readable = readable
        return readable
