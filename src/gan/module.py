"""The adversarial training step: n_critic discriminator updates, then one generator update, per batch.

The objective is passed in like the networks are: a loss (src/gan/losses.py), a penalty on D
(src/gan/regularizers.py), an augmentation of every image D sees (src/gan/augment.py), an optimizer factory per
network and an optional learning-rate schedule (src/gan/schedules.py). The step itself never asks which."""

import functools
import inspect
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from src.core.atomic_io import WriteFailed, describe_failure
from src.core.errors import UserError
from src.core.loop import mark_batch_counted, upgrade_checkpoint
from src.gan.augment import STATE_PREFIX as AUGMENT_PREFIX
from src.gan.augment import Augment, NoAugment, fit_state
from src.gan.cuda_graph import CapturedStep, why_not_captured
from src.gan.ema import (
    EMA,
    STATE_PREFIX,
    WEIGHTS_PREFIX,
    drop_ema,
    has_ema,
    recompute_batchnorm_statistics,
    start_from_generator,
)
from src.gan.interval_means import IntervalMeans
from src.gan.losses import BCE, Loss
from src.gan.regularizers import NoPenalty, Regularizer
from src.gan.updates import choose_updates
from src.networks.conditional import ProjectionDiscriminator, conditioned_generator
from src.networks.spectral_norm import apply_spectral_norm

# The EMA copy of G stays in eval mode on purpose (it is only sampled); Lightning would warn about it every fit.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")

LOGGED_SUMS_KEY = "logged_interval_sums"  # checkpoint key of the logging interval's running sums


def _same(saved: object, configured: object) -> bool:
    """Optimizer settings as saved (tuples, floats) and as configured (lists from the config)."""
    if isinstance(saved, (list, tuple)) and isinstance(configured, (list, tuple)):
        return len(saved) == len(configured) and all(_same(a, b) for a, b in zip(saved, configured, strict=True))
    return saved == configured


def logger_write_failed(logger: object, err: Exception) -> Exception:
    """A logger's write failure as WriteFailed (Lightning's TensorBoard logger reports it as a ValueError about the
    value logged, the OSError inside); any other error as it was."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return err
    folder = Path(getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None) or ".")
    reason, remedy = describe_failure(folder / "logs", cause, 0)
    return WriteFailed(f"could not write the {type(logger).__name__} logs in {folder}: {reason}", remedy)


def takes_capturable(*factories: "OptimizerFactory") -> bool:
    """Whether every optimizer factory accepts capturable=True (Adam's and AdamW's state on the device)."""
    return all("capturable" in inspect.signature(factory).parameters for factory in factories)


OptimizerFactory = Callable[..., torch.optim.Optimizer]  # params -> optimizer (Hydra's `_partial_: true`)
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]  # (optimizer, total_batches) -> scheduler


class GAN(L.LightningModule):
    """Provides what the callbacks read (src/gan/contract.py)."""

    # Checkpoints with or without the EMA copy of G, or an augmentation's state (ADA's p), load (on_load_checkpoint
    # fills or drops these keys).
    optional_state_prefixes = (STATE_PREFIX, AUGMENT_PREFIX)

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        z_dim: int,
        image_size: int,
        channels: int,
        loss: Loss | None = None,
        regularizer: Regularizer | None = None,
        augment: Augment | None = None,
        scheduler: SchedulerFactory | None = None,
        spectral_norm: bool = False,
        grad_clip_norm: float | None = None,
        n_critic: int = 1,
        reuse_fake: bool = True,
        num_fixed: int = 64,
        fixed_seed: int = 0,
        conditional: bool = False,
        num_classes: int | None = None,
        class_embedding_dim: int = 16,
        class_batch_norm: bool = False,
        ema_decay: float | None = None,
        ema_warmup: bool = True,
        ema_start: int = 0,
        ema_bn_batches: int = 16,
        sample_with_ema: bool = True,
        compile: bool = False,
        cuda_graph: bool = False,
        channels_last: bool = False,
        lr_g: float | None = None,
        lr_d: float | None = None,
        betas: Sequence[float] | None = None,
        fused_adam: bool | None = None,
    ) -> None:
        """lr_g, lr_d, betas, fused_adam: the model config's optimizer settings, which reach the optimizers through
        conf/optimizer/ (optimizer_g, optimizer_d); here they are only recorded, in the checkpoint's
        hyper_parameters. Settings that must be positive are checked with the config (src/core/checks.py)."""
        super().__init__()
        objective = {"loss": loss or BCE(), "regularizer": regularizer or NoPenalty(),
                     "augment": augment or NoAugment()}
        self._record_hyperparameters(objective)
        self.automatic_optimization = False
        # Read on every batch, and by every callback: plain attributes, not lookups in hparams.
        self.n_critic, self.conditional = n_critic, conditional
        # With one D step, the G step reuses that step's fake batch (one G forward per batch, as pytorch/examples'
        # dcgan does); G's graph is kept for it. With n_critic > 1 every D step and the G step draw fresh noise.
        self.reuses_fake = reuse_fake and n_critic == 1
        self.loss, self.regularizer, self.augment = objective.values()
        self.optimizer_g, self.optimizer_d, self.scheduler = optimizer_g, optimizer_d, scheduler

        discriminator = apply_spectral_norm(discriminator) if spectral_norm else discriminator
        self.generator = conditioned_generator(generator, conditional, num_classes, class_embedding_dim,
                                               class_batch_norm)
        self.discriminator = (ProjectionDiscriminator(discriminator, num_classes, (channels, image_size, image_size))
                              if conditional else discriminator)
        self._fix_latents(num_fixed, fixed_seed, num_classes if conditional else None)
        self._check_shapes()

        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise UserError(f"model.ema_decay must be in [0, 1) (null or 0 turns the EMA off), got {ema_decay}")
        self.ema = EMA(self.generator, ema_decay, ema_warmup, ema_start) if ema_decay else None
        self._ema_statistics_fresh = False  # the EMA's BatchNorm statistics belong to its current weights
        self._logged = IntervalMeans()
        self.logged_means: dict[str, float] = {}  # what the last logging batch logged (the progress bar shows it)

    def _record_hyperparameters(self, objective: dict[str, object]) -> None:
        """Checkpoints keep plain values only (they load with weights_only): the objects are recorded by their repr,
        the networks and factories not at all."""
        self.save_hyperparameters(ignore=["generator", "discriminator", *objective, "optimizer_g", "optimizer_d",
                                          "scheduler"])
        self.hparams.update({name: repr(value) for name, value in objective.items()})
        if self.hparams.betas is not None:
            self.hparams.betas = tuple(float(b) for b in self.hparams.betas)

    def _fix_latents(self, num_fixed: int, seed: int, num_classes: int | None) -> None:
        """The sample grids' noise (and, conditional, their labels: one row per class, the same noise down a column),
        drawn once from its own seed and kept as buffers, so every grid of a run shows the same latents."""
        noise = torch.randn(num_fixed, self.z_dim, generator=torch.Generator().manual_seed(seed))
        self.grid_columns: int | None = None
        if num_classes is None:
            self.fixed_labels = None
        else:
            self.grid_columns = -(-num_fixed // num_classes)
            noise = noise[: self.grid_columns].repeat(num_classes, 1)
            self.register_buffer("fixed_labels", torch.arange(num_classes).repeat_interleave(self.grid_columns))
        self.register_buffer("fixed_noise", noise)

    @property
    def sampling_generator(self) -> nn.Module:
        """What grids, metrics and generator.pt use: the EMA copy of G (with BatchNorm statistics of its own
        weights), unless model.sample_with_ema=false."""
        if self.ema is None or not self.hparams.sample_with_ema:
            return self.generator
        if not self._ema_statistics_fresh:
            self.recompute_ema_statistics()
        return self.ema.module

    def recompute_ema_statistics(self) -> None:
        """BatchNorm statistics for the averaged weights, from ema_bn_batches batches of noise drawn from a private
        generator: the same noise every time, and the training's random stream is left alone (exact resume).
        Off the per-batch path: run when the EMA is sampled or checkpointed."""
        if not self.hparams.ema_bn_batches:
            return
        rng = torch.Generator(device=self.device).manual_seed(self.hparams.fixed_seed)
        noise = (torch.randn(self.hparams.num_fixed, self.z_dim, generator=rng, device=self.device)
                 for _ in range(self.hparams.ema_bn_batches))
        recompute_batchnorm_statistics(self.ema.module, noise)
        self._ema_statistics_fresh = True

    def setup(self, stage: str) -> None:
        self.channels_last = self._use_channels_last()
        if self.channels_last:  # NHWC convolutions: faster on tensor cores (and a little on CPU)
            for net in (self.generator, self.discriminator, self.ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        if self.hparams.compile:  # in place: the modules keep their own state_dict keys (no `_orig_mod.`)
            self.generator.compile()
            self.discriminator.compile()
        self.updates, lightning_reason = choose_updates(self, self.hparams.grad_clip_norm)
        self.captured = False  # model.cuda_graph=true and the run allows it (decided before the optimizers exist)
        if self.hparams.cuda_graph:
            reason = why_not_captured(self.trainer.strategy.root_device, lightning_reason, self.scheduler is not None,
                                      self.hparams.compile, takes_capturable(self.optimizer_g, self.optimizer_d))
            self.captured = reason is None
            rank_zero_info(f"[step] model.cuda_graph=true: the step runs eagerly, since {reason}" if reason else
                           "[step] model.cuda_graph=true: each batch replays one CUDA graph (after 3 eager batches)")
        self.batch_step = CapturedStep(self.adversarial_step) if self.captured else self.adversarial_step

    def _use_channels_last(self) -> bool:
        if not self.hparams.channels_last:
            return False
        if self.hparams.compile and self.trainer.strategy.root_device.type == "cuda":
            rank_zero_info("[compile] model.compile=true on a GPU keeps G and D in NCHW (model.channels_last is set "
                           "aside): torch 2.11's inductor crashed on channels_last convolution backwards on an H200")
            return False
        return True

    def on_fit_start(self) -> None:
        if self.hparams.conditional:  # fake labels follow the real class shares of this dataset
            shares = self.trainer.datamodule.label_distribution().to(self.device)
            for generator in (self.generator, self.ema.module if self.ema is not None else None):
                if generator is not None:
                    generator.class_probs.copy_(shares)
        if self.trainer.world_size > 1:  # every rank was seeded alike: give each its own noise stream
            torch.manual_seed(torch.initial_seed() + self.global_rank)

    def on_train_start(self) -> None:
        self._apply_configured_optimizer_settings()

    def _apply_configured_optimizer_settings(self) -> None:
        """A resumed optimizer comes back with the settings it was saved with; the configured ones win, so e.g.
        `resume=<run> model.lr_g=1e-4` takes effect (one line says what changed). A scheduled rate is rescaled
        where it stands: its schedule continues from the new base rate."""
        schedulers = self.lr_schedulers() or []
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        changed = []
        networks = zip(("optimizer_g", "optimizer_d"), self.optimizers(), (self.optimizer_g, self.optimizer_d),
                       (self.generator, self.discriminator), strict=True)
        for i, (name, optimizer, factory, net) in enumerate(networks):
            wanted = factory(net.parameters()).defaults
            for group in optimizer.param_groups:
                if "capturable" in group:  # how this run steps (a CUDA graph or not), not a setting to compare
                    group["capturable"] = self.captured
                for key, value in wanted.items():
                    if key not in group or key == "capturable" or _same(group[key], value):
                        continue
                    if key == "lr":
                        base = group.get("initial_lr", group["lr"])
                        group["lr"] = group["lr"] * value / base if base else value
                        if "initial_lr" in group:
                            group["initial_lr"] = value
                        if i < len(schedulers):
                            schedulers[i].base_lrs = [value for _ in schedulers[i].base_lrs]
                        changed.append(f"{name} lr {base:g} -> {value:g}")
                    else:
                        changed.append(f"{name} {key} {group[key]} -> {value}")
                        group[key] = value
        if changed:
            rank_zero_info(f"[resume] the configured optimizer settings replace the saved ones: {', '.join(changed)}")

    @property
    def z_dim(self) -> int:
        return self.hparams.z_dim

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

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        real, real_labels = batch[0], batch[1] if self.conditional else None
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        penalty_due = self.regularizer.due(self.batches_done)  # a Python int: deciding costs no GPU sync
        values = self.batch_step(real, real_labels, penalty_due)
        self.updates.count_batch()
        if self.ema is not None:
            self._ema_statistics_fresh = False  # recomputed when the EMA is sampled
        self._log_batch(values)
        for scheduler in self.lr_schedulers() or []:  # after logging: the rates logged are the ones this batch used
            scheduler.step()
        return {"loss_g": values["loss/g"], "loss_d": values["loss/d"]}

    def adversarial_step(self, real: torch.Tensor, real_labels: torch.Tensor | None,
                         penalty_due: bool) -> dict[str, torch.Tensor]:
        """Everything a batch does on the device: n_critic D updates, one G update, the EMA; returns what the batch
        logs, still on the device. With model.cuda_graph=true this is what the graph replays, so it reads nothing
        back to the host and changes no Python state."""
        opt_g, opt_d = self.updates.optimizers()
        critic = self.discriminator if real_labels is None else functools.partial(self.discriminator, y=real_labels)
        reuse = self.reuses_fake
        for _ in range(self.n_critic):
            fake, fake_labels = self._generate(real) if reuse else (None, None)
            with self.updates.training(opt_d, self.discriminator):
                if not reuse:
                    with torch.no_grad():  # only D learns from this fake batch
                        fake, fake_labels = self._generate(real)
                seen_real, seen_fake = self.augment(real), self.augment(fake.detach())
                real_logits = self._judge(seen_real, real_labels)
                fake_logits = self._judge(seen_fake, fake_labels)
                d_loss = self.loss.discriminator(real_logits, fake_logits)
                penalty = self.regularizer(critic, seen_real, seen_fake) if penalty_due else None
                self.updates.step(opt_d, d_loss if penalty is None else d_loss + penalty, self.discriminator)
            self.augment.observe(real_logits)  # an adaptive augmentation (ADA) steers by D's verdict on reals
        with self.updates.training(opt_g, self.generator):
            if not reuse:
                fake, fake_labels = self._generate(real)
            g_loss = self.loss.generator(self._judge(self.augment(fake), fake_labels))
            self.updates.step(opt_g, g_loss, self.generator)
        if self.ema is not None:
            self.ema.update(self.generator)  # copies G's BatchNorm statistics: recomputed when the EMA is sampled
        return self._batch_values(g_loss, d_loss, real_logits, fake_logits, penalty)

    def _generate(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A fake batch as large as the real one, and its labels (drawn from the real class shares) when
        conditional."""
        z = self.sample_noise(real.size(0))
        if not self.conditional:
            return self.generator(z), None
        labels = self.generator.random_labels(real.size(0), real.device)
        return self.generator(z, labels), labels

    def _judge(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(images) if labels is None else self.discriminator(images, labels)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Inside optimizer.step: an fp16 GradScaler has unscaled the gradients by now, so the norm is the true one."""
        if self.hparams.grad_clip_norm is not None:
            self.clip_gradients(optimizer, self.hparams.grad_clip_norm, gradient_clip_algorithm="norm")

    def _batch_values(self, g_loss: torch.Tensor, d_loss: torch.Tensor, real_logits: torch.Tensor,
                      fake_logits: torch.Tensor, penalty: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The losses, D's raw logits for every loss, its probabilities where they mean one, and what the augmentation
        logs (ADA's p)."""
        values = {"loss/g": g_loss.detach(), "loss/d": d_loss.detach(), "D/real": real_logits.detach().mean(),
                  "D/fake": fake_logits.detach().mean()}
        if self.loss.logits_are_probabilities:
            values |= {"D(x)": torch.sigmoid(real_logits.detach()).mean(),
                       "D(G(z))": torch.sigmoid(fake_logits.detach()).mean()}
        if penalty is not None and not isinstance(self.regularizer, NoPenalty):
            values[f"loss/{self.regularizer.name}"] = penalty.detach()
        return values | self.augment.logged()

    def _log_batch(self, values: dict[str, torch.Tensor]) -> None:
        """Every value is logged as its mean over the batches since the last log (trainer.log_every_n_steps): the
        sums stay on the device, so batches in between read nothing back."""
        self._logged.add(values)
        if self.batches_done % self.trainer.log_every_n_steps:
            return
        means = self._logged.pop()
        self.logged_means = dict(zip(means, torch.stack(list(means.values())).tolist(), strict=True))  # one read
        if self.scheduler is not None:
            opt_g, opt_d = self.optimizers()
            self.logged_means |= {"lr/g": opt_g.param_groups[0]["lr"], "lr/d": opt_d.param_groups[0]["lr"]}
        self._send_to_loggers(self.logged_means)

    def _send_to_loggers(self, values: dict[str, float]) -> None:
        """Straight to every logger, at the x-axis self.log uses (batch n at step n - 1), and into callback_metrics
        (a sweep's optimized_metric, the HPARAMS table). self.log would cost about a millisecond a value on a CPU
        (benchmarks/train.md) and turn the floats back into tensors; the progress bar shows logged_means."""
        step = self.batches_done - 1
        for logger in self.loggers:
            try:
                logger.log_metrics(values, step)
                logger.save()
            except Exception as err:  # a full disk under a logger's files: one line, like any other failed write
                raise logger_write_failed(logger, err) from err
        self.trainer.callback_metrics.update({name: torch.tensor(value) for name, value in values.items()})

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The checkpoint's EMA carries BatchNorm statistics of its own weights, like generator.pt; the sums of the
        logging interval under way are kept too."""
        checkpoint[LOGGED_SUMS_KEY] = self._logged.state_dict()
        mark_batch_counted(checkpoint)
        if self.ema is not None and self.hparams.ema_bn_batches:
            if not self._ema_statistics_fresh:
                self.recompute_ema_statistics()
            for name, buffer in self.ema.module.named_buffers():
                checkpoint["state_dict"][WEIGHTS_PREFIX + name] = buffer.detach().clone()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints from before the EMA (or with it off) resume: the EMA starts from their generator. Checkpoints
        without the configured augmentation's state (ADA's p) resume with its initial state; state the configured
        augmentation has no use for is dropped."""
        upgrade_checkpoint(checkpoint)  # one written when the loop counted optimizer steps
        if LOGGED_SUMS_KEY in checkpoint:
            self._logged.load_state_dict(checkpoint[LOGGED_SUMS_KEY])
        state = checkpoint["state_dict"]
        if self.ema is not None and not has_ema(state):
            rank_zero_info("note: the checkpoint has no EMA generator; the EMA starts from its generator weights")
            start_from_generator(state)
        elif self.ema is None and has_ema(state):
            rank_zero_info("note: the checkpoint has an EMA generator and model.ema_decay is null, so it is dropped; "
                           "resume with model.ema_decay=<its decay, e.g. 0.999> to keep it")
            drop_ema(state)
        note = fit_state(state, self.augment, checkpoint.get("hyper_parameters", {}).get("augment", "another augment"))
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

    @torch.no_grad()
    def _check_shapes(self) -> None:
        """Fail at construction, in one line, when G and D don't fit the configured image shape."""
        expected = (self.hparams.channels, self.hparams.image_size, self.hparams.image_size)
        was_training = self.training
        self.eval()
        try:
            images = self.generator(self.fixed_noise[:2])
            logits = self.discriminator(torch.zeros(2, *expected))
        except RuntimeError as err:
            raise UserError(f"generator/discriminator do not fit images of shape {expected}: {err}") from err
        finally:
            self.train(was_training)
        if tuple(images.shape[1:]) != expected or tuple(logits.shape) != (2,):
            raise UserError(
                f"generator makes {tuple(images.shape[1:])} images and discriminator returns "
                f"{tuple(logits.shape)} for a batch of 2; expected {expected} and (2,)"
            )
