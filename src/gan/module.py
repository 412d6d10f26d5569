"""The GAN as a LightningModule: two networks and their optimizers; each batch, `training_step` runs the adversarial
step (src/gan/step.py: n_critic discriminator updates, then one generator update) and keeps what it logs.

The objective is passed in like the networks are: a loss (src/gan/losses.py), a penalty on D
(src/gan/regularizers.py), an augmentation of every image D sees (src/gan/augment.py), an optimizer factory per
network and an optional learning-rate schedule (src/gan/schedules.py). The other settings arrive flat, as
conf/shared/model.yaml names them, and are kept grouped (src/gan/settings.py)."""

import warnings
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from src.core.loop import mark_batch_counted, one_batch, upgrade_checkpoint
from src.gan.augment import STATE_PREFIX as AUGMENT_PREFIX
from src.gan.augment import Augment, NoAugment, fit_state
from src.gan.build import build_networks, check_shapes, fixed_latents
from src.gan.cuda_graph import CapturedStep
from src.gan.ema import EMA, STATE_PREFIX, WEIGHTS_PREFIX, fit_ema_state, recompute_batchnorm_statistics
from src.gan.interval_means import IntervalMeans
from src.gan.losses import BCE, Loss
from src.gan.optimizer_overrides import apply_configured_settings
from src.gan.regularizers import NoPenalty, Regularizer
from src.gan.settings import Settings
from src.gan.speed import choose_path, prepare_networks
from src.gan.step import adversarial_step

LOGGED_SUMS_KEY = "logged_interval_sums"  # checkpoint key of the logging interval's running sums

OptimizerFactory = Callable[..., torch.optim.Optimizer]  # params -> optimizer (Hydra's `_partial_: true`)
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]  # (optimizer, total_batches) -> scheduler


class GAN(L.LightningModule):
    """Provides what the callbacks read (src/gan/contract.py)."""

    # Checkpoints with or without the EMA copy of G, or an augmentation's state (ADA's p), load (on_load_checkpoint
    # fills or drops these keys).
    optional_state_prefixes = (STATE_PREFIX, AUGMENT_PREFIX)

    def __init__(self, generator: nn.Module, discriminator: nn.Module, optimizer_g: OptimizerFactory,
                 optimizer_d: OptimizerFactory, loss: Loss | None = None, regularizer: Regularizer | None = None,
                 augment: Augment | None = None, scheduler: SchedulerFactory | None = None, **settings) -> None:
        """settings: conf/shared/model.yaml's keys (z_dim, n_critic, ema_decay, ...), see src/gan/settings.py. Its
        lr_g, lr_d, betas and fused_adam reach the optimizers through conf/optimizer/ (optimizer_g, optimizer_d);
        here they are only recorded, in the checkpoint's hyper_parameters."""
        super().__init__()
        self.settings = Settings.from_flat(**settings)
        self.loss, self.regularizer, self.augment = loss or BCE(), regularizer or NoPenalty(), augment or NoAugment()
        # Checkpoints keep plain values only (they load with weights_only): the objects are recorded by their repr.
        self.save_hyperparameters(self.settings.flat() | {"loss": repr(self.loss), "regularizer":
                                                          repr(self.regularizer), "augment": repr(self.augment)})
        self.automatic_optimization = False
        self.optimizer_g, self.optimizer_d, self.scheduler = optimizer_g, optimizer_d, scheduler
        # Read on every batch: plain attributes. With one D step, the G step reuses that step's fake batch (one G
        # forward per batch, as pytorch/examples' dcgan does); with n_critic > 1 every step draws fresh noise.
        self.conditional = self.settings.conditioning.conditional
        self.reuses_fake = self.settings.objective.reuse_fake and self.settings.objective.n_critic == 1

        self.generator, self.discriminator = build_networks(generator, discriminator, self.settings)
        noise, labels, self.grid_columns = fixed_latents(self.settings)
        self.register_buffer("fixed_noise", noise)
        if labels is None:
            self.fixed_labels = None
        else:
            self.register_buffer("fixed_labels", labels)
        check_shapes(self.generator, self.discriminator, self.fixed_noise, self.settings)

        ema = self.settings.ema
        self.ema = EMA(self.generator, ema.ema_decay, ema.ema_warmup, ema.ema_start) if ema.ema_decay else None
        self._ema_statistics_fresh = False  # the EMA's BatchNorm statistics belong to its current weights
        self.running_sums = IntervalMeans()  # every logged value, summed on the device since the last logging batch
        self.logged_means: dict[str, float] = {}  # what the last logging batch logged

    @property
    def sampling_generator(self) -> nn.Module:
        """What grids, metrics and generator.pt use: the EMA copy of G (with BatchNorm statistics of its own
        weights), unless model.sample_with_ema=false."""
        if self.ema is None or not self.settings.ema.sample_with_ema:
            return self.generator
        if not self._ema_statistics_fresh:
            self.recompute_ema_statistics()
        return self.ema.module

    def recompute_ema_statistics(self) -> None:
        """BatchNorm statistics for the averaged weights, from ema_bn_batches batches of noise drawn from a private
        generator: the same noise every time, and the training's random stream is left alone (exact resume).
        Off the per-batch path: run when the EMA is sampled or checkpointed."""
        batches, images = self.settings.ema.ema_bn_batches, self.settings.images
        if not batches:
            return
        rng = torch.Generator(device=self.device).manual_seed(images.fixed_seed)
        noise = (torch.randn(images.num_fixed, self.z_dim, generator=rng, device=self.device) for _ in range(batches))
        recompute_batchnorm_statistics(self.ema.module, noise)
        self._ema_statistics_fresh = True

    @property
    def z_dim(self) -> int:
        return self.settings.images.z_dim

    @property
    def batches_done(self) -> int:
        return self.trainer.global_step  # it counts batches (src/core/loop.py)

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def transfer_batch_to_device(self, batch: object, device: torch.device, dataloader_idx: int) -> object:
        """In-memory batches are made on the training device already: Lightning's generic move would walk them for
        nothing on every batch."""
        if isinstance(batch, list | tuple) and all(isinstance(t, torch.Tensor) and t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def setup(self, stage: str) -> None:
        self.channels_last = prepare_networks(self)
        self.updates, self.captured = choose_path(self)
        self.batch_step = CapturedStep(self.adversarial_step) if self.captured else self.adversarial_step

    def on_fit_start(self) -> None:
        if self.conditional:  # fake labels follow the real class shares of this dataset
            shares = self.trainer.datamodule.label_distribution().to(self.device)
            for generator in (self.generator, self.ema.module if self.ema is not None else None):
                if generator is not None:
                    generator.class_probs.copy_(shares)
        if self.trainer.world_size > 1:  # every rank was seeded alike: give each its own noise stream
            torch.manual_seed(torch.initial_seed() + self.global_rank)
        # The EMA copy of G stays in eval mode on purpose (it is only sampled): Lightning's warning about it, just
        # before on_train_start, is silenced until then.
        self._quiet = warnings.catch_warnings()
        self._quiet.__enter__()
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")

    def on_train_start(self) -> None:
        self._quiet.__exit__(None, None, None)
        apply_configured_settings(self)  # a resumed run's optimizers take the configured settings

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        real, real_labels = batch[0], batch[1] if self.conditional else None
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        penalty_due = self.regularizer.due(self.batches_done)  # a Python int: deciding costs no GPU sync
        with one_batch(self.trainer):  # trainer.global_step counts batches, not optimizer steps
            values = self.batch_step(real, real_labels, penalty_due)
        self._ema_statistics_fresh = False  # recomputed when the EMA is sampled
        self._keep_logged(values)
        for scheduler in self.lr_schedulers() or []:  # after logging: the rates logged are the ones this batch used
            scheduler.step()
        return {"loss_g": values["loss/g"], "loss_d": values["loss/d"]}

    def adversarial_step(self, real: torch.Tensor, real_labels: torch.Tensor | None,
                         penalty_due: bool) -> dict[str, torch.Tensor]:
        return adversarial_step(self, real, real_labels, penalty_due)

    def _keep_logged(self, values: dict[str, torch.Tensor]) -> None:
        """Every value is logged as its mean over the batches since the last log (trainer.log_every_n_steps): the
        sums stay on the device, so batches in between read nothing back. The loggers get them from the callback
        src/callbacks/loggers.py's LogScalars; the loss line and the divergence stop read the same sums."""
        self.running_sums.add(values)
        if self.batches_done % self.trainer.log_every_n_steps:
            return
        self.logged_means = self.running_sums.pop()  # one read
        if self.scheduler is not None:
            opt_g, opt_d = self.optimizers()
            self.logged_means |= {"lr/g": opt_g.param_groups[0]["lr"], "lr/d": opt_d.param_groups[0]["lr"]}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Inside optimizer.step: an fp16 GradScaler has unscaled the gradients by now, so the norm is the true one."""
        if self.settings.objective.grad_clip_norm is not None:
            self.clip_gradients(optimizer, self.settings.objective.grad_clip_norm, gradient_clip_algorithm="norm")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The checkpoint's EMA carries BatchNorm statistics of its own weights, like generator.pt; the sums of the
        logging interval under way are kept too."""
        checkpoint[LOGGED_SUMS_KEY] = self.running_sums.state_dict()
        mark_batch_counted(checkpoint)
        if self.ema is not None and self.settings.ema.ema_bn_batches:
            if not self._ema_statistics_fresh:
                self.recompute_ema_statistics()
            for name, buffer in self.ema.module.named_buffers():
                checkpoint["state_dict"][WEIGHTS_PREFIX + name] = buffer.detach().clone()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints with or without the EMA, or the configured augmentation's state (ADA's p), are made to fit."""
        upgrade_checkpoint(checkpoint)  # one written when the loop counted optimizer steps
        if LOGGED_SUMS_KEY in checkpoint:
            self.running_sums.load_state_dict(checkpoint[LOGGED_SUMS_KEY])
        state = checkpoint["state_dict"]
        saved_augment = checkpoint.get("hyper_parameters", {}).get("augment", "another augment")
        for note in (fit_ema_state(state, self.ema is not None), fit_state(state, self.augment, saved_augment)):
            if note:
                rank_zero_info(note)

    def configure_optimizers(self):
        graph_safe = {"capturable": True} if getattr(self, "captured", False) else {}  # Adam's step count on the GPU
        opt_g = self.optimizer_g(self.generator.parameters(), **graph_safe)
        opt_d = self.optimizer_d(self.discriminator.parameters(), **graph_safe)
        if self.scheduler is None:
            return [opt_g, opt_d]
        total_batches = self.trainer.max_steps  # max_batches (src/core/loop.py); checked in src/core/checks.py
        return [opt_g, opt_d], [self.scheduler(opt_g, total_batches), self.scheduler(opt_d, total_batches)]
