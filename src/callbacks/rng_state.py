"""Saves the random generators (torch CPU and CUDA, numpy, python) in every checkpoint and restores them on resume.

Lightning saves none of them, so a resumed run would draw other noise than the run it continues. Where the
restore happens matters, because creating a DataLoader iterator draws from the global torch generator:
- a checkpoint from the end of an epoch is restored at load time, before the next epoch's iterator is made,
  exactly as the uninterrupted run went on from that point;
- a mid-epoch checkpoint is restored just before the next training batch, after the resumed process has made
  its iterator (the uninterrupted run made it at the epoch's start, before the checkpoint).
"""

import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist

from src.core.loop import at_epoch_end


def collect_rng_states() -> dict[str, Any]:
    """Plain containers and tensors only, so checkpoints load with torch.load(weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


class RNGState(L.Callback):
    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._trainer: L.Trainer | None = None  # state_dict() gets no trainer argument

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        states = collect_rng_states()
        per_rank = [states]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            per_rank = [None] * dist.get_world_size()  # every rank draws its own noise: keep each rank's generators
            dist.all_gather_object(per_rank, states)
        return {"states": states, "per_rank": per_rank, "at_epoch_end": trainer is not None and at_epoch_end(trainer)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        per_rank, rank = state_dict.get("per_rank", []), self._trainer.global_rank if self._trainer else 0
        states = per_rank[rank] if len(per_rank) > rank else state_dict["states"]
        if state_dict["at_epoch_end"]:
            restore_rng_states(states)
        else:
            self._pending = states

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
                             ) -> None:
        if self._pending is not None:
            restore_rng_states(self._pending)
            self._pending = None
