"""Where the training loop is, as the callbacks and the direct step need it and no hook says: the one place that reads
Lightning's loop internals, pinned by tests/test_lightning_api.py so an upgrade that moves them fails there."""

import lightning as L


def at_epoch_end(trainer: L.Trainer) -> bool:
    """True in the hooks of an epoch's last batch (what the data fetcher found), also after a mid-epoch resume."""
    return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def count_optimizer_steps(trainer: L.Trainer, steps: int) -> None:
    """Count optimizer steps taken without Lightning's optimizer wrapper (src/gan/updates.py), as the wrapper counts
    them: trainer.global_step, the step budget and every checkpoint go by this count."""
    trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_by(steps)
