"""The GAN module's settings, grouped by what they steer. Configs, overrides and checkpoints name them flat, as
conf/shared/model.yaml does (model.lr_g, model.ema_decay, ...): `Settings.from_flat` sorts those keys into their
groups and `flat` gives them back in the same order, so a checkpoint's hyper_parameters keep their names."""

from dataclasses import asdict, dataclass, fields
from typing import Any

from src.core.errors import UserError


@dataclass(frozen=True)
class Images:
    """What G makes and D judges; num_fixed latents (from fixed_seed) make every sample grid."""

    z_dim: int
    image_size: int
    channels: int
    num_fixed: int = 64
    fixed_seed: int = 0


@dataclass(frozen=True)
class Objective:
    """How the step trains, beside the loss, penalty and augmentation objects."""

    spectral_norm: bool = False
    grad_clip_norm: float | None = None
    n_critic: int = 1
    reuse_fake: bool = True


@dataclass(frozen=True)
class Conditioning:
    conditional: bool = False
    num_classes: int | None = None
    class_embedding_dim: int = 16
    class_batch_norm: bool = False


@dataclass(frozen=True)
class EMASettings:
    ema_decay: float | None = None
    ema_warmup: bool = True
    ema_start: int = 0
    ema_bn_batches: int = 16
    sample_with_ema: bool = True

    def __post_init__(self) -> None:
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise UserError(f"model.ema_decay must be in [0, 1) (null or 0 turns the EMA off), got {self.ema_decay}")


@dataclass(frozen=True)
class Speed:
    """How fast the same arithmetic runs: torch.compile, one CUDA graph a batch, NHWC layout."""

    compile: bool = False
    cuda_graph: bool = False
    channels_last: bool = False


@dataclass(frozen=True)
class OptimizerSettings:
    """Only recorded (in the checkpoint's hyper_parameters): they reach the optimizers through conf/optimizer/."""

    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, ...] | None = None
    fused_adam: bool | None = None

    def __post_init__(self) -> None:
        if self.betas is not None:  # a list from the config; checkpoints keep plain tuples
            object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))


@dataclass(frozen=True)
class Settings:
    images: Images
    objective: Objective
    conditioning: Conditioning
    ema: EMASettings
    speed: Speed
    optimizers: OptimizerSettings

    @classmethod
    def from_flat(cls, **flat: Any) -> "Settings":
        """The groups from the flat keys; a key no group has fails as an unknown keyword argument would."""
        groups = {}
        for field in fields(cls):
            names = {f.name for f in fields(field.type)}
            groups[field.name] = field.type(**{k: v for k, v in flat.items() if k in names})
        unknown = set(flat) - {name for group in groups.values() for name in asdict(group)}
        if unknown:
            raise TypeError(f"GAN got unexpected settings: {', '.join(sorted(unknown))}")
        return cls(**groups)

    def flat(self) -> dict[str, Any]:
        """Every setting under its config key (model.<key>), as checkpoints record them."""
        return {name: getattr(group, name) for group in vars(self).values() for name in asdict(group)}
