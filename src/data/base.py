"""Shared DataModule: resize to the model's size, match its channels, normalise to [-1, 1], batch."""

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from src.errors import UserError


class ImageDataModule(L.LightningDataModule):
    native_channels: int = 1  # what the files hold; `channels` may ask for the other mode
    name: str = "dataset"

    def __init__(
        self,
        data_dir: str,
        image_size: int,
        channels: int,
        batch_size: int = 128,
        num_workers: int = 2,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        for key, value in {"data.batch_size": batch_size, "data.image_size": image_size}.items():
            if value <= 0:
                raise UserError(f"{key} must be positive, got {value}")
        if channels not in (1, 3):
            raise UserError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {channels}")
        if num_workers < 0:
            raise UserError(f"data.num_workers must be 0 or more, got {num_workers}")
        self.data_dir = Path(data_dir)
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.train_set: Dataset | None = None

    def transform(self) -> transforms.Compose:
        steps: list = []
        if self.channels != self.native_channels:
            steps.append(transforms.Grayscale(num_output_channels=self.channels))
        steps += [
            transforms.Resize(self.image_size),
            transforms.CenterCrop(self.image_size),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * self.channels, [0.5] * self.channels),
        ]
        return transforms.Compose(steps)

    def prepare_data(self) -> None:
        message = self.ensure_files()
        if message:
            print(f"[data] {self.name}: {message}")

    def ensure_files(self) -> str:
        """Make the raw files available under data_dir (download or offline source); say where from."""
        raise NotImplementedError

    def make_dataset(self, train: bool) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self.make_dataset(train=True)
        if len(self.train_set) < self.batch_size:
            raise UserError(
                f"{self.name} has {len(self.train_set)} training images, fewer than data.batch_size="
                f"{self.batch_size}: lower data.batch_size"
            )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,  # BatchNorm GANs dislike a tiny last batch
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def example_batch(self, n: int = 64) -> torch.Tensor:
        """A few real images, normalised like the training batches (for the real-image grid)."""
        if self.train_set is None:
            self.setup("fit")
        return torch.stack([self.train_set[i][0] for i in range(min(n, len(self.train_set)))])
