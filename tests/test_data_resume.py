"""Through Lightning itself: a run resumed from a checkpoint sees exactly the batches an uninterrupted run saw next.

The loader is the same class in both paths; tests/test_data_fast.py checks the per-item path at the loader level.
"""

from pathlib import Path

import lightning as L
import pytest
import torch

from src.core.instantiate import instantiate
from src.run.compose import compose_config


class RecordAndSave(L.Callback):
    """Records every batch the model gets; saves a checkpoint after the batches numbered in `save_after`."""

    def __init__(self, folder: Path, save_after: tuple[int, ...] = ()) -> None:
        self.folder, self.save_after = folder, save_after
        self.seen: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(batch[0].detach().clone())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if len(self.seen) in self.save_after:  # where ModelCheckpoint(every_n_train_steps) saves too
            trainer.save_checkpoint(self.folder / f"after_{len(self.seen)}.ckpt")


def fit(data_dir: Path, out: Path, save_after: tuple[int, ...] = (), ckpt_path: Path | None = None,
        data: tuple[str, ...] = ()) -> list:
    """10 batches of 8 from 64 images, in memory: all 8 batches of epoch 0, then 2 of epoch 1 (MNIST; `data`
    overrides pick another dataset)."""
    cfg = compose_config("train", ["model=mlp_gan", "max_batches=10", "data.batch_size=8", f"paths.data_dir={data_dir}",
                                   "~logger", "~callbacks", "trainer.enable_progress_bar=false",
                                   "trainer.enable_model_summary=false", *data], out)
    L.seed_everything(cfg.seed)
    record = RecordAndSave(out, save_after)
    trainer = instantiate(cfg.trainer, callbacks=[record], logger=False)
    trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data), ckpt_path=ckpt_path)
    return record.seen


def test_resume_mid_epoch_and_at_epoch_end_continues_the_same_batch_sequence(data_dir: Path, tmp_path: Path) -> None:
    uninterrupted = fit(data_dir, tmp_path / "full", save_after=(5, 8))  # mid-epoch, and at the end of epoch 0
    assert len(uninterrupted) == 10
    for done in (5, 8):
        ckpt = tmp_path / "full" / f"after_{done}.ckpt"
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["loops"]["fit_loop"]["state_dict"]
        assert state["combined_loader"][0]["batches_done"] == done  # Lightning stored our loader's state
        resumed = fit(data_dir, tmp_path / f"resumed_{done}", ckpt_path=ckpt)
        assert len(resumed) == 10 - done
        assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted[done:], strict=True))


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_a_mirrored_folder_resumes_mid_epoch_on_the_same_flipped_batches(data_dir: Path, tmp_path: Path,
                                                                        in_memory: str) -> None:
    folder = ("data=folder", f"data.path={data_dir / 'images'}", f"data.in_memory={in_memory}", "data.mirror=true",
              "data.num_workers=0")  # 17 images: 2 batches an epoch, the 5th batch ends mid-epoch
    uninterrupted = fit(data_dir, tmp_path / "full", save_after=(5,), data=folder)
    resumed = fit(data_dir, tmp_path / "resumed", ckpt_path=tmp_path / "full" / "after_5.ckpt", data=folder)
    assert len(uninterrupted) == 10 and len(resumed) == 5
    assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted[5:], strict=True))
