"""Finding and reading the training checkpoints a run folder holds, with one clear line when one can't be used."""

from pathlib import Path
from typing import Any

import torch

from src.core.errors import UserError
from src.core.layout import RunFolder
from src.core.loop import batches_in

TRAINING_STATE = {"state_dict", "optimizer_states", "loops", "global_step"}


def load_lazily(path: Path) -> Any:
    """torch.load with tensors memory-mapped: cheap even for big files, and a truncated file fails at once."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def read_checkpoint(path: Path, key: str) -> dict[str, Any]:
    """A training checkpoint written by src.train; `key` names the setting the path came from."""
    if not path.is_file():
        raise UserError(f"{key}={path} does not exist: pass a run folder as resume=<run> or a checkpoints/*.ckpt file")
    try:
        payload = load_lazily(path)
    except Exception as err:
        raise UserError(
            f"{key}={path} is not a readable checkpoint (truncated or not a torch file: {type(err).__name__}): "
            f"pass another file, or resume=<run folder> to take the newest readable one"
        ) from err
    if not isinstance(payload, dict) or not TRAINING_STATE <= payload.keys():
        raise UserError(f"{key}={path} holds no training state (weights only?): pass a checkpoints/*.ckpt written "
                        "by src.train")
    return payload


def newest_checkpoint(folder: Path, skipped: list[str] | None = None) -> tuple[Path, int] | None:
    """(path, batches trained) of the most advanced checkpoint in folder that loads; unreadable files are skipped
    (and named in `skipped`, with why, when given)."""
    found = []
    for path in sorted(folder.glob("*.ckpt")) if folder.is_dir() else []:
        try:
            batches = batches_in(load_lazily(path))
        except Exception as err:  # truncated, empty, not a torch file, not a training checkpoint
            if skipped is not None:
                skipped.append(f"{path.name} ({'empty' if path.stat().st_size == 0 else type(err).__name__})")
            continue
        found.append(((batches, path.stat().st_mtime, path.name == RunFolder.LAST_CHECKPOINT), path))
    if not found:
        return None
    (batches, *_), path = max(found)
    return path, batches
