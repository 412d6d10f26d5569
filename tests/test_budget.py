"""The budget is what was asked for: max_batches batches exactly (no hidden epoch limit), and max_minutes stops
cleanly with everything a finished run writes, saying why it stopped."""

from pathlib import Path

import torch

from src.train import train


def test_max_batches_is_the_budget_even_past_five_epochs(train_cfg) -> None:
    # 64 images in batches of 8: 8 batches an epoch, so 50 batches run into a sixth epoch (the old max_epochs=5).
    cfg = train_cfg("model=mlp_gan", "model.generator.width=8", "max_batches=50", "~logger", "~callbacks")
    train(cfg)
    (ckpt,) = (Path(cfg.paths.output_dir) / "checkpoints").glob("*.ckpt")
    assert torch.load(ckpt, weights_only=True)["global_step"] == 50


def test_an_explicit_epoch_limit_that_cuts_the_budget_is_named(train_cfg, logged) -> None:
    cfg = train_cfg("model=mlp_gan", "model.generator.width=8", "max_batches=50", "trainer.max_epochs=2", "~logger",
                    "~callbacks")
    train(cfg)
    out = logged()
    assert f"stopped at batch 16 of max_batches=50: trainer.max_epochs=2 reached; everything a finished run writes " \
           f"is in {cfg.paths.output_dir}" in out
    assert f"continue:    python -m src.train resume={cfg.paths.output_dir}  (on to max_batches=50)" in out


def test_max_minutes_stops_and_saves_what_a_finished_run_saves(train_cfg, logged) -> None:
    cfg = train_cfg("model=mlp_gan", "model.generator.width=8", "max_batches=1000000", "max_minutes=0.02", "~logger",
                    "model.ema_decay=0.999",  # the EMA on: a finished run then writes generator_raw.pt too
                    "sample_every_n_batches=0", "checkpoint_every_n_batches=0", "~callbacks.progress_bar")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    out = logged()
    assert "of max_batches=1000000: max_minutes reached;" in out and f"resume={run} max_minutes=<more>" in out
    # the closing summary says the same, not "max_batches=<more than N>" (the budget was not reached)
    assert f"continue:    python -m src.train resume={run} max_minutes=<more than 0.02>" in out
    assert "train more:" not in out
    for name in ("checkpoints/last.ckpt", "generator.pt", "generator_raw.pt", "discriminator.pt",
                 "training_progress.gif"):
        assert (run / name).is_file(), name
    batches = torch.load(run / "checkpoints/last.ckpt", weights_only=True)["global_step"]
    assert 0 < batches < 1000000
