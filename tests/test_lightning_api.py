"""What the callbacks rely on from Lightning beyond its hooks, and from the module (src/gan/contract.py): a Lightning
upgrade or a new module that breaks either fails here, in one place."""

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from src.callbacks.checkpoint import BatchCheckpoint
from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.core.loop import at_epoch_end, count_batch, uncounted
from src.gan.contract import require_gan_module
from src.gan.interval_means import IntervalMeans
from src.run.compose import compose_config


class Tiny(L.LightningModule):
    """Two optimizer steps per batch, like the GAN, on 12 samples in batches of 4 (3 batches per epoch); the loop counts
    batches, as the GAN's does (src/core/loop.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator = nn.Linear(2, 2), nn.Linear(2, 1)
        self.register_buffer("fixed_noise", torch.zeros(4, 2))
        self.fixed_labels, self.grid_columns = None, None
        self.running_sums, self.logged_means = IntervalMeans(), {}
        self.epoch_ends: list[bool] = []

    sampling_generator = property(lambda self: self.generator)
    z_dim = property(lambda self: 2)
    batches_done = property(lambda self: self.trainer.global_step)

    def training_step(self, batch, batch_idx):
        for opt in self.optimizers():
            opt.zero_grad()
            self.manual_backward(self.discriminator(self.generator(batch[0])).mean())
            with uncounted(self.trainer):
                opt.step()
        count_batch(self.trainer)
        self.epoch_ends.append(at_epoch_end(self.trainer))

    def configure_optimizers(self):
        return [torch.optim.SGD(net.parameters(), 0.1) for net in (self.generator, self.discriminator)]

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(12, 2)), batch_size=4)


def fit(module: L.LightningModule, root: Path, max_steps: int, every: int, ckpt_path: str | None = None) -> None:
    trainer = L.Trainer(max_steps=max_steps, callbacks=[BatchCheckpoint(root, every_n_batches=every)], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)
    trainer.fit(module, ckpt_path=ckpt_path)


def test_epoch_end_is_seen_on_the_last_batch_of_each_epoch(tmp_path: Path) -> None:
    module = Tiny()
    fit(module, tmp_path, max_steps=6, every=0)
    assert module.epoch_ends == [False, False, True, False, False, True]


def test_batch_checkpoint_writes_last_every_n_batches_and_one_file_per_epoch(tmp_path: Path) -> None:
    fit(Tiny(), tmp_path, max_steps=5, every=2)  # 5 batches: epoch 0 = batches 1-3, then 4-5
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch_000.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "epoch_000.ckpt", weights_only=True)["global_step"] == 3
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 5  # saved again at the end

    before = (tmp_path / "last.ckpt").stat().st_mtime_ns
    fit(Tiny(), tmp_path, max_steps=5, every=2, ckpt_path=str(tmp_path / "last.ckpt"))  # nothing left to train
    assert (tmp_path / "last.ckpt").stat().st_mtime_ns == before


def test_the_gan_module_provides_what_callbacks_read() -> None:
    require_gan_module(instantiate(compose_config("train", ["model=mlp_gan"]).model))
    require_gan_module(Tiny())


def test_a_module_without_the_contract_is_one_line() -> None:
    class Plain(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.generator = nn.Linear(2, 2)

    with pytest.raises(UserError, match="Plain lacks discriminator, fixed_noise, fixed_labels, grid_columns, "
                                        "running_sums, logged_means, sampling_generator, z_dim, batches_done, "
                                        "which the callbacks read"):
        require_gan_module(Plain())


class RawSteps(Tiny):
    """Steps the optimizers without Lightning's wrapper and counts the batch itself, as the direct step does."""

    def training_step(self, batch, batch_idx):
        for opt in self.optimizers(use_pl_optimizer=False):
            opt.zero_grad()
            self.discriminator(self.generator(batch[0])).mean().backward()
            opt.step()
        count_batch(self.trainer)
        self.epoch_ends.append(at_epoch_end(self.trainer))


@pytest.mark.parametrize("module", [Tiny, RawSteps], ids=["lightnings_wrapper", "raw"])
def test_the_loop_counts_batches_not_optimizer_steps(tmp_path: Path, module: type[Tiny]) -> None:
    module = module()
    fit(module, tmp_path, max_steps=4, every=0)
    assert module.trainer.global_step == 4 == len(module.epoch_ends)  # the budget stopped it after 4 batches
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 4


class UpdatesCallbackMetrics(Tiny):
    """Puts a value into trainer.callback_metrics without self.log, as the GAN module's logging does."""

    def training_step(self, batch, batch_idx):
        super().training_step(batch, batch_idx)
        self.trainer.callback_metrics.update({"loss/g": torch.tensor(float(self.trainer.global_step))})


def test_values_put_into_callback_metrics_stay_there(tmp_path: Path) -> None:
    module = UpdatesCallbackMetrics()
    fit(module, tmp_path, max_steps=2, every=0)
    assert float(module.trainer.callback_metrics["loss/g"]) == 2.0  # the last batch's value, read after fit
