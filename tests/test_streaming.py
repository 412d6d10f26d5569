"""data=streaming: an image folder written as LitData chunks by `python -m src.prepare_data` trains through LitData's
StreamingDataset / StreamingDataLoader, each DDP rank on its own images, and resumes mid-epoch on the batches an
uninterrupted run sees. Object storage (s3://...) takes the same path in LitData but can't be tested offline."""

import os
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from src.core.errors import UserError
from src.data.folder import decode_folder, find_images, probe
from src.data.synthetic import write_image_folder
from src.prepare_data import prepare
from src.run.compose import compose_config
from src.train import train
from tests.conftest import run_cli, write_chunks
from tests.test_data_resume import fit


def read_chunks(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every sample of a chunk folder in index order: (uint8 N×C×H×W, labels)."""
    from litdata import StreamingDataset

    chunks = StreamingDataset(str(folder))
    samples = [chunks[i] for i in range(len(chunks))]
    return np.stack([s["image"] for s in samples]), np.array([s["label"] for s in samples])


@pytest.mark.slow
def test_prepare_data_writes_the_folder_as_data_folder_decodes_it_and_it_trains(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "images", per_class=8)  # 17 readable images in 2 classes, a broken file
    common = ["model=mlp_gan", f"paths.data_dir={tmp_path / 'data'}"]
    written = run_cli("src.prepare_data", *common, "data=folder", f"data.path={root}", f"out={tmp_path / 'chunks'}",
                      "num_workers=2", cwd=tmp_path)
    assert written.returncode == 0, written.stderr[-2000:]
    assert "data.num_classes=2" in written.stderr + written.stdout  # the command to train prints the class count
    images, labels = read_chunks(tmp_path / "chunks")
    expected, expected_labels = decode_folder(root, [p for p in find_images(root) if probe(p) is not None], 28, 3)
    order = np.lexsort(images.reshape(len(images), -1).T)  # LitData's workers may write in another order
    want = np.lexsort(expected.reshape(len(expected), -1).T)
    assert np.array_equal(images[order], expected[want]) and np.array_equal(labels[order], expected_labels[want])

    again = run_cli("src.prepare_data", *common, "data=folder", f"data.path={root}", f"out={tmp_path / 'chunks'}",
                    cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1].startswith("Error: out=")  # never replaced

    trained = run_cli("src.train", *common, "data=streaming", f"data.path={tmp_path / 'chunks'}", "data.num_classes=2",
                      "model.conditional=true", "data.batch_size=4", "data.num_workers=2", "max_batches=5",
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "run" / "generator.pt").is_file()


class RecordImages(L.Callback):
    """Test-only (given as +callbacks.record): writes the images each rank trained on to seen_<rank>.pt."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir, self.seen = Path(output_dir), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(batch[0].detach().cpu())

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save(torch.cat(self.seen), self.output_dir / f"seen_{trainer.global_rank}.pt")


@pytest.mark.slow
def test_two_ddp_ranks_train_on_disjoint_images(tmp_path: Path) -> None:
    write_chunks(tmp_path / "images", tmp_path / "chunks", sizes=(28,))  # 17 images, chunks of 8
    run = tmp_path / "run"
    result = run_cli("src.train", "model=mlp_gan", "data=streaming", f"data.path={tmp_path / 'chunks' / '28'}",
                     "data.num_classes=2", "trainer=ddp_cpu", "data.batch_size=4", "data.num_workers=0",
                     "max_batches=2", f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={run}",
                     f"+callbacks.record._target_={__name__}.RecordImages", f"+callbacks.record.output_dir={run}",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = [torch.load(run / f"seen_{rank}.pt") for rank in (0, 1)]
    assert [len(images) for images in seen] == [8, 8]  # 2 batches of 4 on each rank
    rows = [{tuple(image.flatten().tolist()) for image in images} for images in seen]
    assert len(rows[0]) == len(rows[1]) == 8 and not rows[0] & rows[1]  # 16 different images, none on both ranks


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_resume_mid_epoch_sees_the_batches_of_an_uninterrupted_run(data_dir: Path, tmp_path: Path,
                                                                    workers: int) -> None:
    streaming = ("data=streaming", f"data.path={data_dir / 'chunks' / '28'}", "data.num_classes=2",
                 f"data.num_workers={workers}")  # 17 images: 2 batches of 8 an epoch, the 5th batch ends mid-epoch
    uninterrupted = fit(data_dir, tmp_path / "full", save_after=(5,), data=streaming)
    ckpt = tmp_path / "full" / "after_5.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["loops"]["fit_loop"]["state_dict"]
    assert state["combined_loader"][0]["num_samples_yielded"] == 8  # LitData's loader state, saved by Lightning
    resumed = fit(data_dir, tmp_path / "resumed", ckpt_path=ckpt, data=streaming)
    assert len(uninterrupted) == 10 and len(resumed) == 5
    assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted[5:], strict=True))
    assert not torch.equal(uninterrupted[0], uninterrupted[2])  # each epoch is shuffled anew


def test_chunks_of_another_size_channels_or_classes_get_one_line(train_cfg, data_dir: Path) -> None:
    chunks = f"data.path={data_dir / 'chunks' / '32'}"
    with pytest.raises(UserError, match=r"hold 32x32 images of 3 channels, but the model trains on 28x28"):
        train(train_cfg("model=mlp_gan", "data=streaming", chunks))
    with pytest.raises(UserError, match=r"hold 32x32 images of 3 channels, .* data.channels=1"):
        train(train_cfg("model=dcgan", "data=streaming", chunks, "data.channels=1"))
    with pytest.raises(UserError, match=r"hold 2 classes, but data.num_classes=1: set data.num_classes=2"):
        train(train_cfg("model=dcgan", "data=streaming", chunks, "data.num_classes=1"))


def test_missing_chunks_get_one_line(train_cfg, data_dir: Path) -> None:
    with pytest.raises(UserError, match=r"holds no LitData chunks \(no index.json\): write them with python -m "
                                        r"src.prepare_data"):
        train(train_cfg("data=streaming", f"data.path={data_dir / 'images'}"))


def test_a_missing_litdata_gets_one_line(train_cfg, monkeypatch) -> None:
    cfg = train_cfg("data=streaming")
    monkeypatch.setitem(sys.modules, "litdata", None)  # what `import litdata` sees when it is not installed
    with pytest.raises(UserError, match=r"need the litdata package, which is not installed: pip install"):
        train(cfg)


def test_prepare_data_takes_only_an_image_folder(data_dir: Path, tmp_path: Path) -> None:
    cfg = compose_config("prepare_data", ["data=mnist", f"paths.data_dir={data_dir}", f"out={tmp_path / 'chunks'}"])
    with pytest.raises(UserError, match="writes an image folder as chunks, not MNIST: use data=folder"):
        prepare(cfg)


def test_mirror_flips_about_half_the_images_and_a_resume_flips_the_same(data_dir: Path, tmp_path: Path) -> None:
    streaming = ("data=streaming", f"data.path={data_dir / 'chunks' / '28'}", "data.num_classes=2",
                 "data.num_workers=0")
    plain = fit(data_dir, tmp_path / "plain", data=streaming)
    mirrored = fit(data_dir, tmp_path / "full", save_after=(5,), data=(*streaming, "data.mirror=true"))
    resumed = fit(data_dir, tmp_path / "resumed", ckpt_path=tmp_path / "full" / "after_5.ckpt",
                  data=(*streaming, "data.mirror=true"))
    flipped = []
    for batch, batch_mirrored in zip(plain, mirrored, strict=True):  # the same images in the same order
        for image, candidate in zip(batch, batch_mirrored, strict=True):
            assert torch.equal(candidate, image) or torch.equal(candidate, image.flip(-1))
            flipped.append(not torch.equal(candidate, image))
    assert 0.25 < sum(flipped) / len(flipped) < 0.75
    assert all(torch.equal(a, b) for a, b in zip(resumed, mirrored[5:], strict=True))


def test_each_rank_reads_every_sample_for_statistics_and_grids(data_dir: Path, monkeypatch) -> None:
    """The real-image statistics and grids read the whole set on every rank, not the rank's training part."""
    from litdata.utilities import env

    from src.data.streaming import StreamingDataModule

    second_of_two = env._DistributedEnv(world_size=2, global_rank=1, num_nodes=1)
    monkeypatch.setattr(env._DistributedEnv, "detect", classmethod(lambda cls: second_of_two))
    dm = StreamingDataModule(str(data_dir / "chunks" / "28"), image_size=28, channels=3, num_classes=2, batch_size=4)
    dm.setup("fit")
    assert dm.num_images == len(dm.make_dataset(None)) == 17


def test_object_storage_without_credentials_gets_one_line(train_cfg, monkeypatch) -> None:
    """Offline, the one part of object storage that can be tested: what LitData's backend raises becomes one line."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no wait for an instance's credentials
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(UserError, match=r"chunks at data.path=s3://no-bucket/chunks can't be read \(\w+"):
        train(train_cfg("data=streaming", "data.path=s3://no-bucket/chunks"))
