"""The one adapter between Lightning's loop and the project's unit, the batch; also the one place that reads the
loop's internals, pinned by tests/test_lightning_api.py so an upgrade that moves them fails there.

Lightning's step counter (trainer.global_step) counts optimizer steps, and a GAN batch takes n_critic D steps and
one G step. Here the counter counts batches instead: the training step runs each batch inside `one_batch`, which
counts it once (`count_batch`) however many optimizer steps it took, through Lightning's wrapper or not
(`uncounted`); nothing else touches the counter. So trainer.max_steps, every_n_train_steps,
log_every_n_steps, a checkpoint's global_step and Lightning's own messages all speak batches, and nothing else in
the project converts. Checkpoints written before counted every optimizer step: `batches_in` reads either kind and
`upgrade_checkpoint` converts an old one before Lightning restores it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by src/core/logs.py at start-up, before Lightning is loaded
    import lightning as L

COUNTS_BATCHES = "global_step_counts_batches"  # checkpoint key: set since the counter counts batches
STEP_PROGRESS = "epoch_loop.manual_optimization.optim_step_progress"  # the counter's state in checkpoint["loops"]
# Lightning's own lines that name its counter, in the project's words (the counter counts batches).
TRANSLATED = {"`Trainer.fit` stopped: `max_steps=": "`Trainer.fit` stopped: `max_batches="}


def at_epoch_end(trainer: L.Trainer) -> bool:
    """True in the hooks of an epoch's last batch (what the data fetcher found), also after a mid-epoch resume."""
    return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def _step_progress(trainer: L.Trainer) -> Any:
    return trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress


def count_batch(trainer: L.Trainer) -> None:
    """One batch done: trainer.global_step, the budget (max_steps = max_batches) and every checkpoint go by this."""
    _step_progress(trainer).increment_by(1)


@contextmanager
def uncounted(trainer: L.Trainer) -> Iterator[None]:
    """An optimizer step through Lightning's wrapper, which would count it as a step of the loop: the count is put
    back afterwards (the batch is counted once, by count_batch)."""
    progress = _step_progress(trainer)
    counted = progress.state_dict()
    try:
        yield
    finally:
        progress.load_state_dict(counted)


@contextmanager
def one_batch(trainer: L.Trainer) -> Iterator[None]:
    """The batch inside counted once, when it completes; its optimizer steps not at all."""
    with uncounted(trainer):
        yield
    count_batch(trainer)


def mark_batch_counted(checkpoint: dict[str, Any]) -> None:
    checkpoint[COUNTS_BATCHES] = True


def steps_per_batch_of(checkpoint: dict[str, Any]) -> int:
    """Optimizer steps per batch of the run that wrote an old, step-counted checkpoint."""
    return int(checkpoint.get("hyper_parameters", {}).get("n_critic", 1)) + 1


def batches_in(checkpoint: dict[str, Any]) -> int:
    """Batches a checkpoint has trained, whichever way it counted."""
    step = int(checkpoint.get("global_step", 0))
    return step if checkpoint.get(COUNTS_BATCHES) else step // steps_per_batch_of(checkpoint)


def upgrade_checkpoint(checkpoint: dict[str, Any]) -> None:
    """A step-counted checkpoint rewritten in place to count batches, before Lightning restores its loops."""
    if checkpoint.get(COUNTS_BATCHES):
        return
    per_batch = steps_per_batch_of(checkpoint)
    checkpoint["global_step"] = batches_in(checkpoint)
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get(STEP_PROGRESS)
    for tracker in (progress or {}).values():
        for key in ("ready", "completed"):
            tracker[key] //= per_batch
    mark_batch_counted(checkpoint)
