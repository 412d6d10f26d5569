"""The progress bar counts batches to the budget, whatever n_critic is (Lightning's counter counts batches here), and
shows the losses the module logged."""

import re

from src.train import train


def test_the_last_epoch_is_sized_in_batches(train_cfg, capsys) -> None:
    # 64 images in batches of 8: 8 batches an epoch; 11 batches = a whole epoch, then 3 of the next. With n_critic 2 a
    # batch is 3 optimizer steps: a bar counting steps would size the second epoch 8 (min(8, 33 - 24)) and end early.
    train(train_cfg("model=mlp_gan", "model.n_critic=2", "max_batches=11", "trainer.log_every_n_steps=1"))
    bars = capsys.readouterr().out
    last = {epoch: (done, total) for epoch, done, total in re.findall(r"Epoch (\d+): +\d+%\S* +(\d+)/(\d+)", bars)}
    assert last == {"0": ("8", "8"), "1": ("3", "3")}
    assert re.search(r"Epoch 1: 100%.*loss/g=-?\d+\.\d{3}, loss/d=-?\d+\.\d{3}", bars)
