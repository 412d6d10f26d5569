"""Through Lightning itself: a run resumed from a checkpoint sees exactly the batches an uninterrupted run saw next."""

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from src.cli import instantiate
from tests.conftest import compose_config


class RecordBatches(L.Callback):
    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(batch[0].detach().clone())


def fit(data_dir: Path, out: Path, in_memory: str, ckpt_path: str | None = None) -> list[torch.Tensor]:
    """10 batches of 8 from 64 images: epoch 0 (8 batches) and 2 of epoch 1; a checkpoint after every batch."""
    cfg = compose_config("train", ["model=mlp_gan", "max_batches=10", "data.batch_size=8", "data.num_workers=0",
                                   f"data.in_memory={in_memory}", f"paths.data_dir={data_dir}", "~logger",
                                   "~callbacks", "trainer.enable_progress_bar=false",
                                   "trainer.enable_model_summary=false"], out)
    L.seed_everything(cfg.seed)
    record = RecordBatches()
    every_batch = ModelCheckpoint(dirpath=out / "ckpt", filename="{step}", every_n_train_steps=2, save_top_k=-1)
    trainer = instantiate(cfg.trainer, callbacks=[record, every_batch], logger=False)
    trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data), ckpt_path=ckpt_path)
    return record.seen


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_resume_mid_epoch_and_at_epoch_end_continues_the_same_batch_sequence(
    data_dir: Path, tmp_path: Path, in_memory: str
) -> None:
    uninterrupted = fit(data_dir, tmp_path / "full", in_memory)
    assert len(uninterrupted) == 10
    for done in (5, 8):  # mid-epoch, and right at the end of epoch 0
        ckpt = tmp_path / "full" / "ckpt" / f"step={2 * done}.ckpt"  # mlp_gan: 2 optimizer steps per batch
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["loops"]["fit_loop"]["state_dict"]
        assert state["combined_loader"][0]["batches_done"] == done  # Lightning saved our loader's state
        resumed = fit(data_dir, tmp_path / f"resumed_{done}", in_memory, ckpt_path=str(ckpt))
        assert len(resumed) == 10 - done
        assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted[done:], strict=True))
