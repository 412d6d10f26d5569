"""The progress bar counts batches to the budget (a GAN batch is n_critic + 1 optimizer steps) and shows the losses
the module logged."""

from types import SimpleNamespace

import pytest

from src.callbacks.progress_bar import ProgressBar


@pytest.mark.parametrize(("n_critic", "global_step", "expected"), [
    (1, 0, 937),             # first epoch of 1200 batches: the whole epoch
    (1, 2 * 937, 263),       # second epoch: 1200 - 937 batches left (Lightning's own bar said 526)
    (4, 5 * 1000, 200),      # n_critic 4: 5 steps a batch
])
def test_the_last_epoch_is_sized_in_batches(n_critic: int, global_step: int, expected: int) -> None:
    bar = ProgressBar()
    module = SimpleNamespace(steps_per_batch=n_critic + 1, logged_means={"loss/g": 0.5, "loss/d": 1.25})
    bar._trainer = SimpleNamespace(max_epochs=-1, max_steps=1200 * (n_critic + 1), global_step=global_step,
                                   num_training_batches=937, lightning_module=module)
    assert bar.total_train_batches == expected
