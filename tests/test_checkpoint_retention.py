"""Bounded checkpoints: the newest `callbacks.checkpoint.keep_epochs` epoch files stay (with last.ckpt), older ones
go only once the new one is in place, and resume still finds the newest readable state."""

from pathlib import Path

import pytest
import torch

from src.core import atomic_io
from src.core.atomic_io import WriteFailed
from src.core.checkpoint_files import newest_checkpoint
from src.core.errors import UserError
from src.data.synthetic import write_mnist
from src.run.compose import compose_config
from src.train import train
from tests.test_resume import tiny

EPOCHS = 5  # 64 images / batch 8 = 8 batches per epoch


def run_epochs(tmp_path: Path, *overrides: str) -> Path:
    write_mnist(tmp_path / "data")
    run = tmp_path / "run"
    cfg = compose_config("train", [*tiny(tmp_path / "data", 0), f"max_batches={8 * EPOCHS}", "~logger",
                                   "sample_every_n_batches=0", *overrides], run)
    train(cfg)
    return run


def epoch_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))


def test_only_the_newest_epochs_are_kept(tmp_path: Path) -> None:
    run = run_epochs(tmp_path, "callbacks.checkpoint.keep_epochs=2")
    assert epoch_files(run) == ["epoch_003.ckpt", "epoch_004.ckpt", "last.ckpt"]
    path, batches = newest_checkpoint(run / "checkpoints")
    assert batches == 8 * EPOCHS and torch.load(path, weights_only=True)["global_step"] == batches


def test_an_epoch_file_that_cannot_be_written_deletes_nothing(tmp_path: Path, monkeypatch) -> None:
    save = atomic_io.atomic_save

    def full_at_epoch_3(obj, path):
        if Path(path).name == "epoch_003.ckpt":
            raise WriteFailed(f"could not write {path}: no space left on device", "free space")
        return save(obj, path)

    monkeypatch.setattr(atomic_io, "atomic_save", full_at_epoch_3)
    with pytest.raises(WriteFailed):
        run_epochs(tmp_path, "callbacks.checkpoint.keep_epochs=2")
    assert epoch_files(tmp_path / "run") == ["epoch_001.ckpt", "epoch_002.ckpt", "last.ckpt"]


def test_a_negative_count_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="callbacks.checkpoint.keep_epochs must be 0 or more"):
        run_epochs(tmp_path, "callbacks.checkpoint.keep_epochs=-1")
