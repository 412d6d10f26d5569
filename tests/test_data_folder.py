"""Image folders as data=folder reads them: 16-bit files scaled to 8 bits, decoded once into the folder's store and
then trained on like the built-in sets, the same images as the per-item path."""

import errno
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import src.data.folder as folder_module
from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data import decoded_cache
from src.data.folder import DecodeFile
from src.data.synthetic import write_icon_folder, write_image_folder
from src.run.compose import compose_config
from tests.conftest import run_cli


def folder_data(folder: Path, store: Path, *overrides: str):
    """data=folder as the app configures it (model.image_size 16, batches of 4), its store under `store`."""
    cfg = compose_config("train", ["data=folder", f"data.path={folder}", f"paths.data_dir={store}",
                                   "model.image_size=16", "data.batch_size=4", "data.num_workers=0", *overrides])
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def epoch_batches(dm, epoch: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of training batches as the model gets them (after the batch-wise transform), on the CPU."""
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [dm.on_after_batch_transfer(batch, 0) for batch in loader]


def write_sixteen_bit(folder: Path) -> np.ndarray:
    """Four 16x16 16-bit grayscale PNGs, a horizontal ramp over the whole 16-bit range (the last with a colour key
    on its darkest value); returns the ramp's 8-bit values."""
    folder.mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    for i in range(3):
        Image.fromarray(ramp).save(folder / f"wide_{i}.png")
    Image.fromarray(ramp).save(folder / "wide_keyed.png", transparency=0)
    return np.round(ramp / 257).astype(np.float32)


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_sixteen_bit_grayscale_pngs_are_scaled_not_clipped_to_white(tmp_path: Path, in_memory: str) -> None:
    expected = write_sixteen_bit(tmp_path / "wide")
    dm = folder_data(tmp_path / "wide", tmp_path / "store", "data.channels=1", f"data.in_memory={in_memory}")
    (images, _), = epoch_batches(dm)
    levels = (images[:, 0] + 1) * 127.5
    assert levels.shape == (4, 16, 16)
    plain = torch.from_numpy(expected)
    keyed = plain.clone()
    keyed[:, 0] = 255  # the colour-keyed file's darkest column is transparent: composited on white
    close = [[(image - want).abs().max().item() <= 1.01 for want in (plain, keyed)] for image in levels]
    assert sorted(close) == [[False, True], [True, False], [True, False], [True, False]]  # within one 8-bit level


def write_mixed_folder(root: Path) -> Path:
    """2 classes of RGB PNGs and JPEGs of various sizes, a grayscale PNG, a corrupt file PIL skips, transparent
    icons, a 16-bit PNG and a truncated JPEG (26 images in all)."""
    write_image_folder(root, per_class=10)
    write_icon_folder(root / "icons", per_class=1, size=20)
    Image.fromarray(np.full((24, 30), 40000, np.uint16)).save(root / "wide.png")
    (root / "cats" / "img_1.JPG").write_bytes((root / "cats" / "img_1.JPG").read_bytes()[:400])
    return root


def decoded_files(store: Path) -> list[str]:
    return sorted(p.name for p in store.rglob("decoded/*") if p.name != ".lock")


@pytest.mark.parametrize("channels", [3, 1])
def test_the_decoded_folder_gives_the_per_item_batches(tmp_path: Path, monkeypatch, channels: int) -> None:
    monkeypatch.setattr(decoded_cache, "CHUNK", 4)  # several tasks: the process pool decodes them
    root = write_mixed_folder(tmp_path / "images")
    real_probe = folder_module.probe  # the truncated JPEG passes the setup check and breaks while decoding
    monkeypatch.setattr(folder_module, "probe", lambda p: False if p.name == "img_1.JPG" else real_probe(p))
    fast = folder_data(root, tmp_path / "store", f"data.channels={channels}")
    slow = folder_data(root, tmp_path / "store", f"data.channels={channels}", "data.in_memory=false")
    assert fast.in_memory and not slow.in_memory and fast.num_images == slow.num_images == 26
    pairs = list(zip(epoch_batches(fast, epoch=1), epoch_batches(slow, epoch=1), strict=True))
    assert len(pairs) == 6
    for (x_fast, y_fast), (x_slow, y_slow) in pairs:
        assert x_fast.shape == x_slow.shape == (4, channels, 16, 16) and x_fast.dtype == torch.float32
        assert torch.equal(y_fast, y_slow)
        # the same images in the same order, bitwise: decoded by the same PIL steps, and x / 127.5 - 1 equals
        # ToTensor + Normalize for every uint8 value (so a run may switch paths on resume)
        assert torch.equal(x_fast, x_slow)
    assert torch.equal(fast.example_batch(6), slow.example_batch(6))
    assert torch.equal(fast.label_distribution(), slow.label_distribution())


def test_the_cache_is_in_the_store_reused_and_rebuilt_when_a_file_or_setting_changes(tmp_path: Path, monkeypatch,
                                                                                     logged) -> None:
    root = write_image_folder(tmp_path / "images", per_class=4)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    first = folder_data(root, tmp_path / "store")
    lines = logged()
    assert "[data] image folder: decoded 9 images once into " in lines and "(6.8 KB)" in lines  # 9 x 3 x 16 x 16 bytes
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the images
    assert len(decoded_files(tmp_path / "store")) == 2  # the .npy and its .json, no temp file
    decoded = torch.clone(first.images)

    calls = []
    real = decoded_cache.decode_all
    monkeypatch.setattr(folder_module, "decode_all", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = folder_data(root, tmp_path / "store")
    assert not calls and torch.equal(again.images, decoded)  # a second run does not decode
    assert "decoded once in" in logged()

    Image.new("RGB", (30, 30), (9, 99, 199)).save(root / "cats" / "img_0.png")  # same name, new pixels and mtime
    changed = folder_data(root, tmp_path / "store")
    assert calls == [1] and not torch.equal(changed.images, decoded)
    assert len(decoded_files(tmp_path / "store")) == 2  # the old version is gone
    folder_data(root, tmp_path / "store", "data.background=black")
    folder_data(root, tmp_path / "store", "model.image_size=8")
    assert len(calls) == 3 and len(decoded_files(tmp_path / "store")) == 6  # one cache per size and background
    folder_data(root, tmp_path / "store")
    assert len(calls) == 3


def test_a_stop_during_decoding_leaves_no_cache_and_the_next_run_decodes(tmp_path: Path, monkeypatch) -> None:
    root = write_image_folder(tmp_path / "images", per_class=4)
    real = DecodeFile.__call__
    seen = []

    def interrupted(self, path):
        seen.append(path)
        if len(seen) == 5:
            raise KeyboardInterrupt
        return real(self, path)

    with monkeypatch.context() as m:
        m.setattr(DecodeFile, "__call__", interrupted)
        with pytest.raises(KeyboardInterrupt):
            folder_data(root, tmp_path / "store")
    assert decoded_files(tmp_path / "store") == []
    dm = folder_data(root, tmp_path / "store")
    assert dm.in_memory and dm.num_images == 9 and len(decoded_files(tmp_path / "store")) == 2


@pytest.mark.parametrize("fault", ["full disk", "read-only store"])
def test_a_store_that_cannot_hold_the_cache_falls_back_to_per_item_in_one_line(tmp_path: Path, monkeypatch, logged,
                                                                               fault: str) -> None:
    root = write_image_folder(tmp_path / "images", per_class=4)
    if fault == "full disk":
        def no_space(fd, offset, length):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(decoded_cache.os, "posix_fallocate", no_space)
    else:
        real_mkdir = Path.mkdir

        def read_only(self, *args, **kwargs):
            if "store" in self.parts:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only)
    dm = folder_data(root, tmp_path / "store")
    warned = [line for line in logged().splitlines() if "per item" in line]
    reason = "no space left on device" if fault == "full disk" else "read-only file system"
    assert len(warned) == 1 and reason in warned[0] and warned[0].startswith("[data] can't write the decoded images")
    assert not dm.in_memory and dm.num_images == 9 and len(epoch_batches(dm)) == 2
    assert decoded_files(tmp_path / "store") == []


def test_a_cache_larger_than_memory_is_memory_mapped(tmp_path: Path, monkeypatch, logged) -> None:
    root = write_image_folder(tmp_path / "images", per_class=4)
    in_memory = folder_data(root, tmp_path / "store")
    monkeypatch.setattr(decoded_cache, "fits_in_memory", lambda size: False)
    mapped = folder_data(root, tmp_path / "store")
    assert mapped.mapped and "memory-mapped" in logged()
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(epoch_batches(mapped), epoch_batches(in_memory),
                                                           strict=True))


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_mirror_flips_about_half_the_images_the_same_way_in_both_paths(tmp_path: Path, in_memory: str) -> None:
    root = write_mixed_folder(tmp_path / "images")
    plain = folder_data(root, tmp_path / "store", f"data.in_memory={in_memory}")
    mirrored = folder_data(root, tmp_path / "store", f"data.in_memory={in_memory}", "data.mirror=true")
    other_path = folder_data(root, tmp_path / "store", f"data.in_memory={'false' if in_memory == 'true' else 'true'}",
                             "data.mirror=true")
    flipped = []
    for epoch in (0, 1):
        pairs = zip(epoch_batches(plain, epoch), epoch_batches(mirrored, epoch), epoch_batches(other_path, epoch),
                    strict=True)
        for (x, y), (x_mirrored, y_mirrored), (x_other, _) in pairs:
            assert torch.equal(y, y_mirrored)  # the same images in the same order, only flipped
            for image, candidate in zip(x, x_mirrored, strict=True):
                assert torch.equal(candidate, image) or torch.equal(candidate, image.flip(-1))
                flipped.append(not torch.equal(candidate, image))
            assert torch.equal(x_mirrored, x_other)  # both paths flip the same images
    assert 0.25 < sum(flipped) / len(flipped) < 0.75 and flipped[:24] != flipped[24:]  # new flips each epoch


def test_mirror_must_be_true_or_false(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", per_class=4)
    with pytest.raises(UserError, match=r"data\.mirror must be true or false, got yes"):
        folder_data(root, tmp_path / "store", "data.mirror=yes")


@pytest.mark.slow
def test_two_ddp_ranks_decode_once_and_the_next_run_loads_the_cache(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", per_class=8)  # 17 readable images
    common = ["model=mlp_gan", "data=folder", f"data.path={root}", "data.batch_size=4", "data.num_workers=0",
              f"paths.data_dir={tmp_path / 'data'}"]
    first = run_cli("src.train", *common, "trainer=ddp_cpu", "max_batches=2", f"hydra.run.dir={tmp_path / 'ddp'}",
                    cwd=tmp_path)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-2000:]
    assert output.count("[data] image folder: decoded 17 images once into ") == 1  # one rank built it
    cache = list((tmp_path / "data" / "image_folders").rglob("*.npy"))
    assert len(cache) == 1 and not list(root.rglob("*.npy"))
    second = run_cli("src.train", *common, "max_batches=1", f"hydra.run.dir={tmp_path / 'one'}", cwd=tmp_path)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-2000:]
    assert f"decoded once in {cache[0]}" in output and "decoding" not in output


def test_processes_starting_together_decode_once(tmp_path: Path, monkeypatch) -> None:
    """What DDP ranks do: the first builds the cache under the store's lock, the other waits and loads it."""
    root = write_image_folder(tmp_path / "images", per_class=4)
    calls = []
    real = decoded_cache.decode_all

    def slow_decode(*args, **kwargs):
        calls.append(1)
        time.sleep(1.0)  # the second process arrives while the first decodes
        return real(*args, **kwargs)

    monkeypatch.setattr(folder_module, "decode_all", slow_decode)
    results = []
    ranks = [threading.Thread(target=lambda: results.append(folder_data(root, tmp_path / "store"))) for _ in range(2)]
    for rank in ranks:
        rank.start()
        time.sleep(0.3)
    for rank in ranks:
        rank.join()
    assert len(calls) == 1 and len(results) == 2 and torch.equal(results[0].images, results[1].images)
