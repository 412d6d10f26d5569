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


def test_a_run_resumed_mid_epoch_shows_its_epoch_and_total(train_cfg, tmp_path, capsys) -> None:
    # 8 batches an epoch: stopped after batch 3, resumed to batch 6, the bar reads "Epoch 0" and ends at 6/6
    cfg = train_cfg("model=mlp_gan", "max_batches=3")
    train(cfg)
    capsys.readouterr()
    train(train_cfg("model=mlp_gan", "max_batches=6", f"resume={cfg.paths.output_dir}"))
    bars = capsys.readouterr().out
    assert not re.search(r"[1-9]\d*/\?", bars), bars[-500:]  # Lightning's bar had no total: "Training: 3/?"
    assert re.findall(r"Epoch (\d+): +\d+%\S* +(\d+)/(\d+)", bars)[-1] == ("0", "6", "6"), bars[-500:]
