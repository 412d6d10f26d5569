"""A loss that turns non-finite stops training with one line naming the batch and the last good checkpoint."""

from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import open_dict

from src.core.errors import TrainingDiverged
from src.data.synthetic import write_mnist
from src.train import train
from tests.conftest import run_cli


class PoisonDiscriminator(L.Callback):
    """Test-only: fills D's weights with NaN just before batch `batch` (0-based), as an exploding update would."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if pl_module.batches_done == self.batch:
            with torch.no_grad():
                for p in pl_module.discriminator.parameters():
                    p.fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(train_cfg, tmp_path: Path) -> None:
    cfg = train_cfg("model=mlp_gan", "model.generator.width=8", "max_batches=8", "checkpoint_every_n_batches=2")
    with open_dict(cfg):
        cfg.callbacks.poison = {"_target_": "tests.test_divergence.PoisonDiscriminator", "batch": 5}
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(TrainingDiverged) as caught:
        train(cfg)
    message = str(caught.value)
    assert message.startswith("training diverged at batch 6: loss/g and loss/d not finite (loss/g=nan, loss/d=nan)")
    assert f"the last good checkpoint is {last} (batch 4), left as it was" in message
    assert f"python -m src.train resume={tmp_path / 'run'}" in message and "\n" not in message

    kept = torch.load(last, weights_only=True)
    assert kept["global_step"] == 4  # batch 4: the diverged batch 6 was never saved
    weights = {k: t for k, t in kept["state_dict"].items() if k.startswith(("generator.", "discriminator."))}
    assert weights and all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())


@pytest.mark.slow  # starts a process
def test_a_run_that_runs_away_while_finite_stops_before_saving_it(tmp_path: Path) -> None:
    # Learning rates of 1e3: losses reach 1e20 and weights ~1e4 within the first epoch, every value finite.
    data = tmp_path / "data"
    write_mnist(data)
    run = tmp_path / "run"
    result = run_cli("src.train", "model=mlp_gan", "model.lr_g=1e3", "model.lr_d=1e3", "max_batches=300",
                     "trainer.log_every_n_steps=25", "data.batch_size=8", "data.num_workers=0",
                     f"paths.data_dir={data}", f"hydra.run.dir={run}", "~callbacks.progress_bar")
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(errors) == 1, result.stderr[-3000:]
    # checked at the first epoch end's save (8 batches of 8 images), before anything is written
    assert errors[0].startswith("Error: training diverged in batches 1-8: it ran away (mean |loss/g| ")
    assert "a healthy run stays far below |loss| 1e+05 and |weight| 1e+04); no checkpoint was written before it" \
        in errors[0]
    assert not list(run.glob("checkpoints/*.ckpt")) and not (run / "generator.pt").exists()
