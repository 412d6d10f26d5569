"""An image folder as LitData chunks (`python -m src.prepare_data`), streamed from a local folder, another node's
disk or object storage (s3://, gs://, ...) through LitData's StreamingDataset / StreamingDataLoader.

Each sample holds the image as data=folder decodes it (uint8 C×H×W at the model's size), its label, and the
folder's class counts: the first sample says what the chunks hold (size, channels, classes and their shares)
without a pass over the data, wherever it lives. LitData gives each rank (and each of its workers) its own part of
the chunks, shuffles by (seed, epoch), and its loader's state_dict() is what Lightning saves in a checkpoint, so a
run resumes mid-epoch on the batches it would have seen next.
"""

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from src.core.commands import override
from src.core.errors import UserError
from src.data.base import ImageDataModule

# litdata before 0.2.70 asks PyPI for a newer version whenever a dataset is made (up to 30 s offline).
os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")
# LitData's notes on its cache and memory-mapping, each epoch; its warnings still show.
logging.getLogger("litdata").setLevel(logging.WARNING)

INSTALL = "pip install 'litdata>=0.2.60' (make install does)"


def require_litdata() -> Any:
    try:
        import litdata
    except ImportError as err:
        raise UserError(f"LitData chunks need the litdata package, which is not installed: {INSTALL}") from err
    return litdata


def is_remote(path: str) -> bool:
    return "://" in path


def write_command(out: str) -> str:
    return f"python -m src.prepare_data data=folder data.path=<your images> out={out}"


class EncodeSample:
    """index -> one sample of the chunks (litdata.optimize calls it in its worker processes; picklable): the image
    decoded as data=folder trains on it (`decode`: src/data/folder.py's DecodeFile), its label and the class counts;
    None for a file that fails to decode, which LitData then leaves out."""

    def __init__(self, decode: Any, files: list[Path], labels: list[int], class_counts: np.ndarray) -> None:
        self.decode, self.files, self.labels, self.class_counts = decode, files, labels, class_counts

    def __call__(self, index: int) -> dict[str, Any] | None:
        try:
            image = self.decode(self.files[index])
        except Exception:  # PIL raises many types for broken files (see src/data/folder.py's probe)
            return None
        return {"image": np.ascontiguousarray(image), "label": self.labels[index], "class_counts": self.class_counts}


def as_pair(sample: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """A sample as the project's loaders give an item: (uint8 image, label)."""
    return torch.from_numpy(np.asarray(sample["image"])), int(sample["label"])


class ChunkItems(Dataset):
    """The chunks as a map-style dataset of (transform(PIL image), label), for the real-image statistics."""

    def __init__(self, chunks: Any, transform: Any) -> None:
        self.chunks, self.transform = chunks, transform

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image, label = as_pair(self.chunks[index])
        pixels = image.permute(1, 2, 0).numpy()
        picture = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
        return (self.transform(picture) if self.transform else picture), label


class StreamingDataModule(ImageDataModule):
    """`data=streaming data.path=<chunk folder or s3://...>`: batches of uint8 images straight from the chunks,
    normalised (and flipped, with `mirror`) batch-wise on the training device."""

    name = "LitData chunks"
    option = "streaming"

    def __init__(self, path: str, image_size: int, channels: int = 3, store_dir: str | None = None,
                 cache_dir: str | None = None, **kwargs) -> None:
        super().__init__(data_dir=path, image_size=image_size, channels=channels, in_memory=False, **kwargs)
        self.path = str(path)  # as given: Path() would fold s3:// into s3:/
        self._store_dir = Path(store_dir) if store_dir else None
        self.cache_dir = cache_dir
        self.native_channels = channels
        self.chunks: Any = None  # a StreamingDataset for reading samples by index
        self.class_counts: np.ndarray | None = None

    @property
    def channel_options(self) -> dict[int, str]:
        return {1: "grayscale", 3: "RGB", 4: "RGBA"}

    @property
    def store_dir(self) -> Path:
        return self._store_dir or self.data_dir

    @property
    def command_line(self) -> str:
        return f"data=streaming {override('data.path', self.path)}"

    def ensure_files(self) -> str:
        require_litdata()
        if not is_remote(self.path) and not (self.data_dir / "index.json").is_file():
            raise UserError(f"data.path={self.path} holds no LitData chunks (no index.json): write them with "
                            f"{write_command(self.path)}")
        return ""

    def open_chunks(self, shuffle: bool = False) -> Any:
        from litdata import StreamingDataset

        with self.reading():
            return StreamingDataset(self.path, cache_dir=self.cache_dir, shuffle=shuffle, seed=self.seed,
                                    drop_last=True, transform=as_pair if shuffle else None)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One line when the chunks can't be read: LitData's storage backends raise their own types (botocore's
        NoCredentialsError, ...), so any error is this line's."""
        try:
            yield
        except Exception as err:
            raise UserError(f"the LitData chunks at data.path={self.path} can't be read ({type(err).__name__}: "
                            f"{err}): check the path and its credentials, or write them again with "
                            f"{write_command(self.path)}") from err

    def setup(self, stage: str | None = None) -> None:
        if self.chunks is not None:
            return
        from litdata.utilities.env import _DistributedEnv

        self.ensure_files()
        self.chunks = self.open_chunks()
        # A reader of every sample whatever the ranks (real-image statistics, grids): LitData's len() and order
        # would otherwise cover this rank's part only.
        self.chunks.distributed_env = _DistributedEnv(world_size=1, global_rank=0, num_nodes=1)
        with self.reading():
            first = self.chunks[0]
        self.check_matches(tuple(np.asarray(first["image"]).shape), np.asarray(first["class_counts"]))
        self.class_counts = np.asarray(first["class_counts"])
        if len(self.chunks) < self.batch_size:
            raise UserError(f"{self.name} at {self.path} hold {len(self.chunks)} images, fewer than data.batch_size="
                            f"{self.batch_size}: lower data.batch_size")

    def check_matches(self, shape: tuple[int, ...], class_counts: np.ndarray) -> None:
        """One line when the chunks were written for another image size, channel count or number of classes."""
        wanted = (self.channels, self.image_size, self.image_size)
        if shape != wanted:
            channels, height, width = shape
            raise UserError(
                f"the chunks at data.path={self.path} hold {width}x{height} images of {channels} channels, but the "
                f"model trains on {self.image_size}x{self.image_size} with data.channels={self.channels}: write them "
                f"again at this size ({write_command('<new folder>')} with the same model= and data.keep_alpha=), or "
                f"train at theirs (model.image_size={width} data.channels={channels} if the model allows it)")
        if len(class_counts) != self.num_classes:
            raise UserError(f"the chunks at data.path={self.path} hold {len(class_counts)} classes, but "
                            f"data.num_classes={self.num_classes}: set data.num_classes={len(class_counts)}")

    @property
    def num_images(self) -> int:
        return len(self.chunks)

    def train_dataloader(self) -> Any:
        from litdata import StreamingDataLoader

        overfit = getattr(self.trainer, "overfit_batches", 0) > 0  # debug=overfit: the same first batches
        # Made here, not in setup(): LitData reads the ranks (torch.distributed) when a dataset is made.
        dataset = self.open_chunks(shuffle=not overfit)
        # LitData sizes each rank's and worker's part itself, which Lightning's warning can't know.
        warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")
        loader = StreamingDataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                                     pin_memory=self.pin_memory, drop_last=True)
        if len(loader) == 0:
            world_size = self.trainer.world_size if self.trainer is not None else 1
            raise UserError(f"{self.name} at {self.path} hold {len(self.chunks)} images, too few for {world_size} "
                            f"devices × data.batch_size={self.batch_size}: lower data.batch_size")
        return loader

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        if self.mirror and self.trainer is not None:
            images = self.flipped(images, self.trainer.global_step, self.trainer.global_rank)
        return super().on_after_batch_transfer((images, labels), dataloader_idx)

    def flipped(self, images: torch.Tensor, batches_done: int, rank: int) -> torch.Tensor:
        """Each image flipped horizontally with probability 1/2, drawn from (seed, rank, batches done): a resumed
        run flips the batches it sees as the uninterrupted run did."""
        generator = torch.Generator().manual_seed(((self.seed * 1_000_003 + rank) * 1_000_003 + batches_done) % 2**63)
        flips = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
        return torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)

    def make_dataset(self, transform: Any, train: bool = True) -> ChunkItems:
        if not train:
            raise UserError("LitData chunks hold no test split: train the domain classifier on the image folder "
                            "they were written from (python -m src.train_classifier data=folder data.path=<images>)")
        self.setup()
        return ChunkItems(self.chunks, transform)

    def label_distribution(self) -> torch.Tensor:
        self.setup()
        counts = torch.as_tensor(self.class_counts, dtype=torch.float64)
        return (counts / counts.sum()).float()

    def example_batch(self, n: int = 64) -> torch.Tensor:
        """n images drawn at random (seeded by data.seed), normalised like the training batches."""
        self.setup()
        picked = torch.randperm(len(self.chunks), generator=torch.Generator().manual_seed(self.seed))[:n]
        images = torch.stack([as_pair(self.chunks[i])[0] for i in picked.tolist()])
        return self.batch_transform(images)
