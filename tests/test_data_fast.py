"""The in-memory fast path gives the batches of torchvision's per-item path, the on-disk cache follows its files, and
the loader keeps its contract: order a pure function of (seed, epoch), one disjoint shard per rank, exact mid-epoch
resume."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.base import ImageDataModule, per_item_transform
from src.data.batch_transform import BatchTransform, to_channels
from src.data.cifar10 import CIFAR10DataModule
from src.data.loader import EpochBatches
from src.data.mnist import MNISTDataModule
from src.data.synthetic import write_mnist

ONE_LEVEL = 2 / 255  # one 8-bit step in [-1, 1] units: PIL's fixed-point resize vs float interpolate + rounding


def make(cls: type[ImageDataModule], data_dir: Path, **kwargs) -> ImageDataModule:
    kwargs = {"image_size": 32, "channels": 1, "batch_size": 8, "num_workers": 0, "seed": 3, **kwargs}
    if cls is CIFAR10DataModule:
        kwargs["verify_checksums"] = False
    dm = cls(str(data_dir), **kwargs)
    dm.setup("fit")
    return dm


def batches(dm: ImageDataModule, epoch: int = 0, rank: int = 0, world_size: int = 1) -> list:
    dm.trainer = SimpleNamespace(global_rank=rank, world_size=world_size,
                                 strategy=SimpleNamespace(root_device=torch.device("cpu")))
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [dm.on_after_batch_transfer(batch, 0) for batch in loader]


@pytest.mark.parametrize(
    ("cls", "image_size", "channels"),
    [(MNISTDataModule, 32, 1), (MNISTDataModule, 20, 3), (CIFAR10DataModule, 28, 1), (CIFAR10DataModule, 64, 3)],
)
def test_fast_path_batches_match_the_per_item_path(data_dir: Path, cls, image_size: int, channels: int) -> None:
    fast = make(cls, data_dir, image_size=image_size, channels=channels)
    slow = make(cls, data_dir, image_size=image_size, channels=channels, in_memory=False)
    pairs = list(zip(batches(fast, epoch=1), batches(slow, epoch=1), strict=True))
    assert len(pairs) == fast.num_images // 8 > 0
    for (x_fast, y_fast), (x_slow, y_slow) in pairs:
        assert x_fast.shape == x_slow.shape == (8, channels, image_size, image_size)
        assert x_fast.dtype == x_slow.dtype == torch.float32
        assert torch.equal(y_fast, y_slow)  # same images in the same order
        assert (x_fast - x_slow).abs().max() <= ONE_LEVEL + 1e-6
        assert (x_fast - x_slow).abs().mean() < ONE_LEVEL / 2
    example = fast.example_batch(5)
    assert example.device.type == "cpu" and (example - slow.example_batch(5)).abs().max() <= ONE_LEVEL + 1e-6


@pytest.mark.parametrize(("height", "width", "size", "channels"), [(30, 45, 16, 3), (45, 30, 40, 1), (33, 21, 21, 3)])
def test_batch_transform_matches_torchvision_on_non_square_images(height: int, width: int, size: int,
                                                                  channels: int) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    per_item = per_item_transform(size, channels, native_channels=3)
    expected = torch.stack([per_item(Image.fromarray(image)) for image in rgb])
    ours = BatchTransform(size, channels)(torch.from_numpy(rgb).permute(0, 3, 1, 2))
    assert ours.shape == expected.shape == (4, channels, size, size)
    assert (ours - expected).abs().max() <= ONE_LEVEL + 1e-6


def test_rgb_to_gray_is_bit_exact_with_pil() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    ours = to_channels(torch.from_numpy(rgb).permute(2, 0, 1)[None], 1)[0, 0].numpy()
    assert np.array_equal(ours, expected)


def test_decoded_cache_is_written_once_reused_and_rebuilt_when_files_change(data_dir: Path, monkeypatch) -> None:
    first = make(MNISTDataModule, data_dir)
    cache = data_dir / "mnist_train_uint8.pt"
    assert cache.is_file() and not list(data_dir.glob(".*tmp"))  # renamed into place, no temp file left

    def must_not_decode(self):
        raise AssertionError("decoded again although the cache is valid")

    with monkeypatch.context() as m:
        m.setattr(MNISTDataModule, "decode_all", must_not_decode)
        assert torch.equal(make(MNISTDataModule, data_dir).images, first.images)
    write_mnist(data_dir, n_train=24)  # new raw files: the cache must follow them
    assert len(make(MNISTDataModule, data_dir).images) == 24


def test_order_is_a_pure_function_of_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> torch.Tensor:
        sampler = EpochBatches(100, 10, seed)
        sampler.set_epoch(epoch)
        return sampler.indices()

    torch.manual_seed(0)
    a = order(7, 2)
    torch.manual_seed(123)  # the global RNG must not matter
    torch.rand(10)
    assert torch.equal(a, order(7, 2))
    assert not torch.equal(a, order(7, 3)) and not torch.equal(a, order(8, 2))
    assert sorted(a.flatten().tolist()) == list(range(100))


@pytest.mark.parametrize("in_memory", [True, False])
def test_two_ranks_see_disjoint_shards_that_cover_the_set(data_dir: Path, in_memory: bool) -> None:
    dm = make(MNISTDataModule, data_dir, image_size=28, in_memory=in_memory)  # 64 images, 8 per batch
    seen = []
    for rank in (0, 1):
        images = torch.cat([x for x, _ in batches(dm, epoch=1, rank=rank, world_size=2)])
        assert len(images) == 32  # each rank: 4 full batches
        seen.append({tuple(img.flatten().tolist()) for img in images})
    everything = {tuple(img.flatten().tolist()) for img in dm.example_batch(64)}
    assert not seen[0] & seen[1] and seen[0] | seen[1] == everything


@pytest.mark.parametrize("in_memory", [True, False])
@pytest.mark.parametrize("k", [0, 3, 8])
def test_resumed_loader_yields_exactly_the_remaining_batches(data_dir: Path, in_memory: bool, k: int) -> None:
    dm = make(MNISTDataModule, data_dir, in_memory=in_memory)  # 8 batches per epoch
    uninterrupted = [x for x, _ in batches(dm, epoch=2)] + [x for x, _ in batches(dm, epoch=3)]

    loader = dm.train_dataloader()
    loader.sampler.set_epoch(2)
    it = iter(loader)
    for _ in range(k):
        next(it)
    state = loader.state_dict()

    fresh = make(MNISTDataModule, data_dir, in_memory=in_memory).train_dataloader()
    fresh.load_state_dict(state)  # Lightning's order on resume: load_state_dict, iter(), then set_epoch()
    resumed_iter = iter(fresh)
    fresh.sampler.set_epoch(3 if k == 8 else 2)  # a state taken at an epoch's end resumes at the next one
    resumed = [dm.on_after_batch_transfer(b, 0)[0] for b in resumed_iter]
    fresh.sampler.set_epoch(3)
    if k < 8:
        resumed += [dm.on_after_batch_transfer(b, 0)[0] for b in fresh]
    assert len(resumed) == 16 - k
    assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted[k:], strict=True))


def test_state_after_the_next_epoch_is_announced_points_at_its_start(data_dir: Path) -> None:
    loader = make(MNISTDataModule, data_dir).train_dataloader()
    for _ in loader:  # all of epoch 0
        pass
    assert loader.state_dict()["epoch"] == 0 and loader.state_dict()["batches_done"] == 8
    loader.sampler.set_epoch(1)  # Lightning announces epoch 1; a checkpoint now must not skip it
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["batches_done"] == 0


def test_overfit_debugging_gets_the_same_unshuffled_batches_every_epoch(data_dir: Path) -> None:
    dm = make(MNISTDataModule, data_dir)
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, overfit_batches=4,
                                 strategy=SimpleNamespace(root_device=torch.device("cpu")))
    loader = dm.train_dataloader()
    firsts = []
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        firsts.append(next(iter(loader))[0])
    assert torch.equal(firsts[0], firsts[1]) and torch.equal(firsts[0], dm.images[:8])


def test_per_item_workers_follow_the_planned_order_across_epochs(data_dir: Path) -> None:
    in_process = make(MNISTDataModule, data_dir, in_memory=False)
    loader = make(MNISTDataModule, data_dir, in_memory=False, num_workers=1).train_dataloader()  # one worker, kept
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        got = [x for x, _ in loader]
        assert len(got) == 8  # 64 images, batches of 8
        assert all(torch.equal(a, b) for (a, _), b in zip(batches(in_process, epoch), got, strict=True))
