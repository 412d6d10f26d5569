"""The adversarial training step: n_critic discriminator updates, then one generator update, per batch."""

import warnings
from collections.abc import Sequence

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from src.gan.ema import DEFAULT_DECAY, EMA, STATE_PREFIX, drop_ema, has_ema, start_from_generator
from src.gan.losses import discriminator_loss, generator_loss
from src.run.checks import require_positive
from src.run.errors import UserError

# The EMA copy of G stays in eval mode on purpose (it is only sampled); Lightning would warn about it every fit.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


class GAN(L.LightningModule):
    """Provides what the callbacks read (src/gan/contract.py)."""

    # Checkpoints with or without the EMA copy of G both load (on_load_checkpoint fills or drops these keys).
    optional_state_prefixes = (STATE_PREFIX,)

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        z_dim: int,
        image_size: int,
        channels: int,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        n_critic: int = 1,
        num_fixed: int = 64,
        fixed_seed: int = 0,
        compile: bool = False,
        channels_last: bool = False,
        fused_adam: bool = True,
        ema_decay: float | None = DEFAULT_DECAY,
        ema_warmup: bool = True,
        sample_with_ema: bool = True,
    ) -> None:
        super().__init__()
        for key, value in {"model.lr_g": lr_g, "model.lr_d": lr_d, "model.n_critic": n_critic,
                           "model.num_fixed": num_fixed, "model.z_dim": z_dim}.items():
            require_positive(value, key)
        self.save_hyperparameters(ignore=["generator", "discriminator"])
        self.hparams.betas = tuple(float(b) for b in betas)  # a plain tuple keeps checkpoints loadable
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        noise = torch.randn(num_fixed, z_dim, generator=torch.Generator().manual_seed(fixed_seed))
        self.register_buffer("fixed_noise", noise)
        self._check_shapes()
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise UserError(f"model.ema_decay must be in [0, 1) (null or 0 turns the EMA off), got {ema_decay}")
        self.ema = EMA(generator, ema_decay, ema_warmup) if ema_decay else None

    @property
    def sampling_generator(self) -> nn.Module:
        """What grids, metrics and generator.pt use: the EMA copy of G, unless model.sample_with_ema=false."""
        return self.ema.module if self.ema is not None and self.hparams.sample_with_ema else self.generator

    def setup(self, stage: str) -> None:
        if self.hparams.channels_last:  # NHWC convolutions: faster on tensor cores (and a little on CPU)
            for net in (self.generator, self.discriminator, self.ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        if self.hparams.compile:  # in place: the modules keep their own state_dict keys (no `_orig_mod.`)
            self.generator.compile()
            self.discriminator.compile()

    def on_fit_start(self) -> None:
        if self.trainer.world_size > 1:  # every rank was seeded alike: give each its own noise stream
            torch.manual_seed(torch.initial_seed() + self.global_rank)

    @property
    def z_dim(self) -> int:
        return self.hparams.z_dim

    @property
    def steps_per_batch(self) -> int:
        """Optimizer steps per batch; Lightning's global_step counts every one of them."""
        return self.hparams.n_critic + 1

    @property
    def batches_done(self) -> int:
        return self.trainer.global_step // self.steps_per_batch

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        real = batch[0]
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_g, opt_d = self.optimizers()
        for _ in range(self.hparams.n_critic):
            with self.toggled_optimizer(opt_d):  # G is frozen here, so G(z) builds no graph
                real_logits = self.discriminator(real)
                fake_logits = self.discriminator(self.generator(self.sample_noise(real.size(0))))
                d_loss = discriminator_loss(real_logits, fake_logits)
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(d_loss)
                opt_d.step()
        with self.toggled_optimizer(opt_g):
            g_loss = generator_loss(self.discriminator(self.generator(self.sample_noise(real.size(0)))))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        if self.ema is not None:
            self.ema.update(self.generator)

        d_real, d_fake = torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()
        self.log_dict({"loss/g": g_loss, "loss/d": d_loss}, prog_bar=True)
        self.log_dict({"D(x)": d_real, "D(G(z))": d_fake})
        return {"loss_g": g_loss.detach(), "loss_d": d_loss.detach()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints from before the EMA (or with it off) resume: the EMA starts from their generator."""
        state = checkpoint["state_dict"]
        if self.ema is not None and not has_ema(state):
            rank_zero_info("note: the checkpoint has no EMA generator; the EMA starts from its generator weights")
            start_from_generator(state)
        elif self.ema is None and has_ema(state):
            drop_ema(state)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas, fused = self.hparams.betas, self.hparams.fused_adam or None  # None: torch's default implementation
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_g, betas=betas, fused=fused)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_d, betas=betas, fused=fused)
        return [opt_g, opt_d]

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
