"""Shared DataModule: resize to the model's size, match its channels, normalise to [-1, 1], batch.

Two paths give the same batches (within one 8-bit level):
- in memory (`in_memory=True`): decoded once into a uint8 tensor (cached on disk), kept on the training device
  (or memory-mapped, src/data/decoded_cache.py); batches are indexed, then resized and normalised batch-wise in
  `on_after_batch_transfer`;
- per item (`in_memory=False`): PIL + torchvision transforms in DataLoader workers.
Both use the same seeded, sharded, resumable batch order and, with `mirror`, the same horizontal flips
(src/data/loader.py).
"""

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import Dataset
from torchvision import transforms

from src.core.checks import require_positive
from src.core.errors import UserError
from src.data.batch_transform import BatchTransform
from src.data.loader import EpochBatches, InMemoryBatches, PerItemBatches, ResumableLoader
from src.data.lock import exclusive
from src.data.memory_cache import load_or_build

log = logging.getLogger(__name__)


def per_item_transform(image_size: int, channels: int, native_channels: int) -> transforms.Compose:
    """PIL image -> float tensor in [-1, 1]: the reference that BatchTransform reproduces batch-wise."""
    steps: list = []
    if channels != native_channels:
        steps.append(transforms.Grayscale(num_output_channels=channels))
    steps += [
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * channels, [0.5] * channels),
    ]
    return transforms.Compose(steps)


class ImageDataModule(L.LightningDataModule):
    native_channels: int = 1  # what the files hold; `channels` may ask for the other mode
    name: str = "dataset"
    option: str = ""  # its file in conf/data/ (tests/test_data.py holds each class to it)
    cache_name: str = ""  # stem of the in-memory cache file; "" means the dataset has no in-memory path

    def __init__(
        self,
        data_dir: str,
        image_size: int,
        channels: int,
        batch_size: int = 128,
        num_workers: int = 2,
        pin_memory: bool = False,
        in_memory: bool = True,
        seed: int = 0,
        num_classes: int = 10,
        mirror: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(mirror, bool):
            raise UserError(f"data.mirror must be true or false, got {mirror}")
        require_positive(batch_size, "data.batch_size")
        require_positive(image_size, "data.image_size")
        if channels not in self.channel_options:
            options = " or ".join(f"{n} ({name})" for n, name in self.channel_options.items())
            raise UserError(f"data.channels must be {options}, got {channels}")
        if num_workers < 0:
            raise UserError(f"data.num_workers must be 0 or more, got {num_workers}")
        if in_memory and not self.cache_name:
            raise UserError(f"{self.name} has no in-memory path: set data.in_memory=false")
        self.data_dir = Path(data_dir)
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.in_memory, self.seed, self.num_classes, self.mirror = in_memory, seed, num_classes, mirror
        self.batch_transform = BatchTransform(image_size, channels)
        self.train_set: Dataset | None = None
        self.images: torch.Tensor | None = None  # in-memory path: uint8 N×C×H×W at native size and channels
        self.labels: torch.Tensor | None = None
        self.mapped = False  # the in-memory images are a memory-mapped file (a set larger than memory)

    @property
    def channel_options(self) -> dict[int, str]:
        """The data.channels this dataset can give: the files' mode, or the other one of grayscale and RGB."""
        return {1: "grayscale", 3: "RGB"}

    # --- what each dataset defines -------------------------------------------------------------------------------
    def ensure_files(self) -> str:
        """Make the raw files available under data_dir (download or offline source); say where from."""
        raise NotImplementedError

    def make_dataset(self, transform: Any, train: bool = True) -> Dataset:
        """The training (or test) split, each item passed through `transform` (None: the dataset's raw form)."""
        raise NotImplementedError

    def decode_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """In-memory datasets: every training image as uint8 N×C×H×W, and int64 labels."""
        raise NotImplementedError

    @property
    def raw_dir(self) -> Path:
        """The folder of raw files the in-memory cache is built from (a change there rebuilds it)."""
        raise NotImplementedError

    def verify_raw_files(self) -> None:
        """Before the in-memory cache is (re)built: one clear line if a raw file is damaged (src/data/checksums.py)."""

    def classifier_dataset(self, transform: Any) -> Dataset:
        """The images a domain classifier learns from: the training split (a dataset whose test images are also in
        its training split leaves them out here)."""
        return self.make_dataset(transform, train=True)

    # --- shared ----------------------------------------------------------------------------------------------------
    @property
    def store_dir(self) -> Path:
        """Where files derived from the dataset go (classifiers/, metrics_cache/): data_dir, beside the raw files."""
        return self.data_dir

    @property
    def command_line(self) -> str:
        """The override that picks this dataset (`data=<option>`), for commands a message suggests."""
        return f"data={self.option}"

    @property
    def channels_command(self) -> str:
        """The override that gives this dataset's channels, for commands a message suggests."""
        return f"data.channels={self.channels}"

    def transform(self) -> transforms.Compose:
        return per_item_transform(self.image_size, self.channels, self.native_channels)

    @property
    def cache_path(self) -> Path:
        return self.data_dir / f"{self.cache_name}_train_uint8.pt"

    def preparing(self) -> AbstractContextManager:
        """The lock held while this dataset's shared files in data_dir (raw files, decoded cache) are made: processes
        starting together on one data folder do the work once (src/data/lock.py)."""
        if not self.cache_name:  # nothing is written into data_dir
            return nullcontext()
        return exclusive(self.data_dir / f".{self.name}.lock", f"{self.name} in {self.data_dir}")

    def prepare_data(self) -> None:
        with self.preparing():
            message = self.ensure_files()
        if message:
            log.info(f"[data] {self.name}: {message}")

    def _verify_and_decode(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.verify_raw_files()
        return self.decode_all()

    def load_decoded(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The in-memory path's (images uint8 N×C×H×W, labels int64), from the decoded cache or decoded now; None
        when this dataset reads per item instead (it said why)."""
        (images, labels), cached = load_or_build(self.cache_path, self.raw_dir, self._verify_and_decode,
                                                 self.preparing)
        if not cached and self.cache_path.is_file():
            log.info(f"[data] {self.name}: decoded {len(images)} images once into {self.cache_path}")
        elif not cached:
            log.info(f"[data] {self.name}: decoded {len(images)} images (not cached: see the line above)")
        return images, labels

    def setup(self, stage: str | None = None) -> None:
        if self.in_memory and self.images is None:
            decoded = self.load_decoded()
            if decoded is None:
                self.in_memory = False
            else:
                self.images, self.labels = decoded
        if not self.in_memory and self.train_set is None:
            self.train_set = self.make_dataset(self.transform())
        if self.num_images < self.batch_size:
            raise UserError(
                f"{self.name} has {self.num_images} training images, fewer than data.batch_size="
                f"{self.batch_size}: lower data.batch_size"
            )

    @property
    def num_images(self) -> int:
        return len(self.images) if self.in_memory else len(self.train_set)

    def train_dataloader(self) -> ResumableLoader:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        overfit = getattr(trainer, "overfit_batches", 0) > 0  # debug=overfit: the same first batches every epoch
        sampler = EpochBatches(self.num_images, self.batch_size, self.seed, rank, world_size, shuffle=not overfit,
                               mirror=self.mirror)
        if len(sampler) == 0:
            raise UserError(
                f"{self.name} has {self.num_images} training images, too few for {world_size} devices × "
                f"data.batch_size={self.batch_size}: lower data.batch_size"
            )
        if not self.in_memory:
            return ResumableLoader(sampler, PerItemBatches(self.train_set, self.num_workers, self.pin_memory))
        if trainer is not None:
            self.place(trainer.strategy.root_device)
        return ResumableLoader(sampler, InMemoryBatches(self.images, self.labels))

    def place(self, device: torch.device) -> None:
        """Keep the whole dataset on the training device: a GPU when training on one and it fits in half its free
        memory, else host memory, pinned (batches are indexed there and copied over one by one); a memory-mapped
        set stays mapped on the CPU."""
        if device.type == "cuda" and self.images.device != device:
            free, _ = torch.cuda.mem_get_info(device)
            if self.images.nbytes <= free // 2:
                self.images, self.labels = self.images.to(device), self.labels.to(device)
                return
            if not self.mapped and not self.images.is_pinned():
                self.images, self.labels = self.images.pin_memory(), self.labels.pin_memory()
            where = "memory-mapped from disk" if self.mapped else "in pinned host memory"
            log.info(f"[data] {self.name}: the decoded images ({self.images.nbytes / 2**30:.1f} GB) do not fit on "
                     f"{device} ({free / 2**30:.1f} GB free): batches are indexed {where} and copied over")
        elif not self.mapped:
            self.images, self.labels = self.images.to(device), self.labels.to(device)

    def label_distribution(self) -> torch.Tensor:
        """Each class's share of the training images (float, num_classes long), for conditional GANs."""
        if (self.images if self.in_memory else self.train_set) is None:
            self.setup("fit")
        labels = self.labels if self.in_memory else torch.as_tensor(self.train_set.labels)
        counts = torch.bincount(labels.long().flatten(), minlength=self.num_classes)[: self.num_classes]
        return counts.float() / counts.sum()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        if images.dtype == torch.uint8:  # an in-memory batch: resize and normalise on the training device
            images = self.batch_transform(images)
        return images, labels

    def example_batch(self, n: int = 64) -> torch.Tensor:
        """The first n real images on the CPU, normalised and sized like the training batches (real-image grid)."""
        if (self.images if self.in_memory else self.train_set) is None:
            self.setup("fit")
        if self.in_memory:
            return self.batch_transform(self.images[:n].cpu())
        return torch.stack([self.train_set[i][0] for i in range(min(n, len(self.train_set)))])
