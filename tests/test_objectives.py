"""The research objectives do what their papers say: losses on logits, D penalties, DiffAugment, spectral norm,
and the discriminators' BatchNorm switch (which must leave today's architectures and checkpoints untouched)."""

import math
from functools import cache

import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.gan import losses
from src.gan.augment import Augment, DiffAugment, NoAugment
from src.gan.regularizers import R1, GradientPenalty, NoPenalty, Regularizer
from src.networks.spectral_norm import LAYERS, apply_spectral_norm
from src.run.compose import CONF_DIR, compose_config, group_options

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


# (loss, D loss, G loss) on REAL and FAKE, by hand. BCE(l, 1) = softplus(-l) and BCE(l, 0) = softplus(l).
HAND = [
    (losses.BCE(), ((softplus(-2) + softplus(1)) / 2 + (softplus(0.5) + softplus(-3)) / 2) / 2,
     (softplus(-0.5) + softplus(3)) / 2),
    (losses.Hinge(), (0 + 2) / 2 + (1.5 + 0) / 2, -(0.5 - 3) / 2),
    (losses.LSGAN(), (1 + 4) / 2 / 2 + (0.25 + 9) / 2 / 2, (0.25 + 16) / 2 / 2),
    (losses.Wasserstein(), (0.5 - 3) / 2 - (2 - 1) / 2, -(0.5 - 3) / 2),
]


@pytest.mark.parametrize(("loss", "d_value", "g_value"), HAND, ids=["bce", "hinge", "lsgan", "wgan"])
def test_losses_match_hand_computed_values(loss: losses.Loss, d_value: float, g_value: float) -> None:
    assert loss.discriminator(REAL, FAKE).item() == pytest.approx(d_value, rel=1e-6)
    assert loss.generator(FAKE).item() == pytest.approx(g_value, rel=1e-6)
    assert loss.logits_are_probabilities == isinstance(loss, losses.BCE)


def test_bce_is_exactly_the_designs_arithmetic() -> None:
    real, fake = torch.randn(64) * 3, torch.randn(64) * 3
    today_d = (F.binary_cross_entropy_with_logits(real, torch.ones(64))
               + F.binary_cross_entropy_with_logits(fake, torch.zeros(64))) / 2
    today_g = F.binary_cross_entropy_with_logits(fake, torch.ones(64))
    assert torch.equal(losses.BCE().discriminator(real, fake), today_d)
    assert torch.equal(losses.BCE().generator(fake), today_g)


def configured(group: str, name: str) -> object:
    return instantiate(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"))


@pytest.mark.parametrize("name", group_options("loss"))
def test_losses_are_fp32_and_finite_under_autocast(name: str) -> None:
    loss = configured("loss", name)
    real = torch.tensor([300.0, -300.0], dtype=torch.bfloat16, requires_grad=True)
    fake = torch.tensor([250.0, -200.0], dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d_loss, g_loss = loss.discriminator(real, fake), loss.generator(fake)
    assert d_loss.dtype == g_loss.dtype == torch.float32
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    (d_loss + g_loss).backward()
    assert real.grad.dtype == torch.bfloat16 and torch.isfinite(fake.grad).all()


@pytest.mark.parametrize(("group", "base"), [("loss", losses.Loss), ("regularizer", Regularizer),
                                            ("augment", Augment)])
def test_every_config_instantiates_the_class_it_names(group: str, base: type) -> None:
    """Every option of conf/<group>/ (a new one included, with no edit here): an instance of its _target_, which is a
    kind of the group's base class; the checkpoint records it by its repr (tests/test_objectives_train.py)."""
    assert group_options(group)
    for name in group_options(group):
        target = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")._target_
        made = configured(group, name)
        assert isinstance(made, base) and f"{type(made).__module__}.{type(made).__name__}" == target
    if group == "augment":
        assert instantiate(OmegaConf.load(CONF_DIR / "augment/diffaugment.yaml")).policy == (
            "color", "translation", "cutout")


# --- D penalties ------------------------------------------------------------------------------------------------


class LinearD(nn.Module):
    """D(x) = w . x: its input gradient is w everywhere, so ||grad|| = ||w||."""

    def __init__(self, size: int, norm: float) -> None:
        super().__init__()
        self.linear = nn.Linear(size, 1, bias=False)
        with torch.no_grad():
            self.linear.weight.mul_(norm / self.linear.weight.norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).view(-1)


@pytest.mark.parametrize("norm", [0.3, 1.0, 2.5])
def test_gradient_penalty_and_r1_of_a_linear_d(norm: float) -> None:
    torch.manual_seed(0)
    d = LinearD(3 * 4 * 4, norm)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4) * 4
    gp, r1 = GradientPenalty(weight=10.0), R1(gamma=10.0, every=16)

    penalty = gp(d, real, fake)
    assert penalty.item() == pytest.approx(10 * (norm - 1) ** 2, abs=1e-5)
    penalty.backward()  # double backward: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    w = d.linear.weight.detach()
    torch.testing.assert_close(d.linear.weight.grad, 20 * (norm - 1) * w / norm, atol=1e-5, rtol=1e-4)

    d.zero_grad()
    penalty = r1(d, real, fake)
    assert penalty.item() == pytest.approx(16 * 10 / 2 * norm**2, rel=1e-5)
    penalty.backward()  # d/dw 16 * 5 ||w||^2 = 160 w
    torch.testing.assert_close(d.linear.weight.grad, 160 * w, rtol=1e-4, atol=1e-6)


def test_penalties_are_fp32_under_autocast_and_leave_the_generator_alone() -> None:
    torch.manual_seed(0)
    d = LinearD(3 * 4 * 4, 2.5)
    g_weight = torch.ones((), requires_grad=True)
    real = torch.randn(5, 3, 4, 4).bfloat16().contiguous(memory_format=torch.channels_last)
    fake = (torch.randn(5, 3, 4, 4) * g_weight).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp, r1 = GradientPenalty()(d, real, fake), R1(every=1)(d, real, fake)
    # A bf16 forward would round w (and so these values) to ~3 digits.
    assert gp.dtype == r1.dtype == torch.float32
    assert gp.item() == pytest.approx(10 * 1.5**2, rel=1e-5)
    assert r1.item() == pytest.approx(10 / 2 * 2.5**2, rel=1e-5)
    (gp + r1).backward()
    assert g_weight.grad is None  # fake is detached: the penalty trains D only


def test_penalties_through_a_real_spectral_norm_discriminator() -> None:
    torch.manual_seed(0)
    cfg = small_model_config("dcgan")
    d = apply_spectral_norm(instantiate(cfg.discriminator, batch_norm=False)).to(memory_format=torch.channels_last)
    real = torch.rand(4, cfg.channels, 32, 32).contiguous(memory_format=torch.channels_last) * 2 - 1
    fake = torch.rand(4, cfg.channels, 32, 32) * 2 - 1
    for regularizer in (GradientPenalty(), R1(every=4)):
        d.zero_grad()
        penalty = regularizer(d, real, fake)
        penalty.backward()
        assert penalty.ndim == 0 and torch.isfinite(penalty) and penalty > 0
        weights = [p for name, p in d.named_parameters() if name.endswith("weight.original")]
        assert len(weights) == 4 and all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


def test_no_penalty_is_a_free_zero_and_laziness_is_decided_on_the_host() -> None:
    zero = NoPenalty()(LinearD(4, 1.0), torch.ones(2, 1, 2, 2, requires_grad=True), torch.ones(2, 1, 2, 2))
    assert zero.item() == 0 and zero.ndim == 0 and zero.grad_fn is None and not zero.requires_grad
    assert NoPenalty().every == GradientPenalty().every == 1 and R1().every == 16
    assert [R1(every=16).due(b) for b in (0, 1, 15, 16, 32)] == [True, False, False, True, True]
    assert all(NoPenalty().due(b) and GradientPenalty().due(b) for b in range(5))
    assert {NoPenalty.name, GradientPenalty.name, R1.name} == {"none", "gp", "r1"}
    with pytest.raises(UserError, match="regularizer.every must be a positive integer"):
        R1(every=0)


# --- DiffAugment ------------------------------------------------------------------------------------------------


def shifted(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """images moved down by dy and right by dx, zero-filled (reference by slicing)."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_diffaugment_keeps_shape_dtype_layout_and_gradients(channels: int, channels_last: bool,
                                                            dtype: torch.dtype) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = (torch.rand(4, channels, 12, 12) * 2 - 1).to(dtype).contiguous(memory_format=fmt).requires_grad_(True)
    out = DiffAugment()(x)
    assert out.shape == x.shape and out.dtype == dtype and out.is_contiguous(memory_format=fmt)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_is_an_integer_shift_of_up_to_an_eighth() -> None:
    torch.manual_seed(0)
    x = torch.arange(1, 1 + 2 * 12 * 12, dtype=torch.float32).view(1, 2, 12, 12).repeat(256, 1, 1, 1)
    out = DiffAugment("translation")(x)
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]  # 12 / 8 rounds to 2
    matches = torch.stack([(shifted(x, dy, dx) == out).flatten(1).all(1) for dy, dx in shifts])
    assert (matches.sum(0) == 1).all()  # every output is exactly one of the allowed shifts (distinct pixel values)
    assert matches.any(1).all()  # and each shift, (0, 0) included, turns up


def test_cutout_zeroes_a_half_size_square_clipped_at_the_border() -> None:
    torch.manual_seed(0)
    x = torch.ones(512, 3, 16, 16, requires_grad=True)
    out = DiffAugment("cutout")(x)
    zero = out == 0
    assert (zero == zero[:, :1]).all()  # the same pixels in every channel
    rows, cols = zero[:, 0].any(2).sum(1), zero[:, 0].any(1).sum(1)
    assert (zero[:, 0].flatten(1).sum(1) == rows * cols).all()  # the zeros form one rectangle ...
    assert rows.min() == cols.min() == 4 and rows.max() == cols.max() == 8  # ... of 8x8 clipped to >= 4x4
    assert ((rows == 8) & (cols == 8)).float().mean() > 0.25
    # The centre is uniform over the image, so on average (7/8)^2 of the 8x8 square stays inside it.
    assert zero.flatten(1).sum(1).float().mean().item() == pytest.approx(3 * 64 * (7 / 8) ** 2, rel=0.05)
    out.sum().backward()
    assert torch.equal(x.grad, (~zero).float())


def test_color_is_brightness_saturation_contrast() -> None:
    torch.manual_seed(0)
    gray = torch.full((64, 3, 4, 4), 0.25)
    out = DiffAugment("color")(gray)  # saturation and contrast leave a flat gray image alone
    brightness = out[:, 0, 0, 0] - 0.25
    assert torch.allclose(out, (0.25 + brightness).view(-1, 1, 1, 1).expand_as(out))
    assert brightness.abs().max() <= 0.5 and brightness.std() > 0.2

    x = torch.rand(64, 1, 6, 6)
    out = DiffAugment("color")(x)  # C=1: out - mean(out) = contrast * (x - mean(x))
    centred_in, centred_out = x - x.mean((1, 2, 3), True), out - out.mean((1, 2, 3), True)
    contrast = centred_out[:, 0, 0, 0] / centred_in[:, 0, 0, 0]
    torch.testing.assert_close(centred_out, contrast.view(-1, 1, 1, 1) * centred_in, rtol=1e-4, atol=1e-5)
    assert contrast.min() >= 0.5 and contrast.max() <= 1.5

    x = torch.rand(64, 3, 6, 6)
    out = DiffAugment("color")(x)  # C=3: a pixel's spread over its channels scales by saturation * contrast
    spread_in, spread_out = x - x.mean(1, True), out - out.mean(1, True)
    factor = spread_out[:, 0, 0, 0] / spread_in[:, 0, 0, 0]
    torch.testing.assert_close(spread_out, factor.view(-1, 1, 1, 1) * spread_in, rtol=1e-4, atol=1e-5)
    assert factor.min() >= 0 and factor.max() <= 3 and factor.std() > 0.3


def test_diffaugment_policy_seed_and_identity() -> None:
    with pytest.raises(UserError, match="unknown transform zoom; use .*color, translation, cutout"):
        DiffAugment("color,zoom")
    assert DiffAugment(["translation", " cutout"]).policy == ("translation", "cutout")
    x = torch.rand(8, 3, 16, 16)
    torch.manual_seed(1)
    first = DiffAugment()(x)
    torch.manual_seed(1)
    assert torch.equal(DiffAugment()(x), first)
    assert not torch.equal(DiffAugment()(x), first)
    assert NoAugment()(x) is x


# --- Spectral norm and the BatchNorm switch ----------------------------------------------------------------------

MODELS = group_options("model")
BN_MODELS = ["conv_gan", "dcgan", "dcgan28", "dcgan64"]


@cache
def small_model_config(model: str) -> DictConfig:
    cfg = compose_config("train", [f"model={model}", "model.generator.width=8", "model.discriminator.width=8"])
    return cfg.model


def bn_keys(index: int) -> list[str]:
    return [f"net.{index}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def conv_keys(index: int, bias: bool = True) -> list[str]:
    return [f"net.{index}.weight"] + ([f"net.{index}.bias"] if bias else [])


# Today's discriminators (state_dict keys of the design's architectures): checkpoints must keep loading.
DEFAULT_D_KEYS = {
    "conv_gan": [*conv_keys(0), *conv_keys(2), *bn_keys(3), *conv_keys(5), *conv_keys(8)],
    "dcgan": [*conv_keys(0), *conv_keys(2), *bn_keys(3), *conv_keys(5), *bn_keys(6), *conv_keys(8)],
    "dcgan28": [*conv_keys(0, False), *conv_keys(2, False), *bn_keys(3), *conv_keys(5), *bn_keys(6), *conv_keys(8)],
    "dcgan64": [*conv_keys(0), *conv_keys(2, False), *bn_keys(3), *conv_keys(5, False), *bn_keys(6),
                *conv_keys(8, False), *bn_keys(9), *conv_keys(12)],
}


def test_every_model_config_has_the_batch_norm_switch_set_to_its_design() -> None:
    """Every model offers discriminator.batch_norm (so presets can set it); it is true exactly where D has BatchNorm."""
    assert set(BN_MODELS) <= set(MODELS)
    for model in MODELS:
        cfg = small_model_config(model)
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in instantiate(cfg.discriminator).modules())
        assert has_bn == (model in BN_MODELS)
        assert cfg.discriminator.batch_norm is has_bn


@pytest.mark.parametrize("model", BN_MODELS)
def test_batch_norm_switch(model: str) -> None:
    cfg = small_model_config(model)
    default = instantiate(cfg.discriminator)
    assert list(default.state_dict()) == DEFAULT_D_KEYS[model]

    without = instantiate(cfg.discriminator, batch_norm=False)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in without.modules())
    for i, layer in enumerate(default.net):
        if isinstance(layer, nn.BatchNorm2d):
            assert isinstance(without.net[i], nn.Identity)
            assert without.net[i - 1].bias is not None  # the conv gets back the bias BatchNorm made redundant
        else:
            assert type(without.net[i]) is type(layer)
    x = torch.rand(3, cfg.channels, cfg.image_size, cfg.image_size)
    assert without(x).shape == default(x).shape == (3,)


@pytest.mark.parametrize("model", MODELS)
def test_spectral_norm_makes_every_layer_1_lipschitz(model: str) -> None:
    torch.manual_seed(0)
    cfg = small_model_config(model)
    d = apply_spectral_norm(instantiate(cfg.discriminator))
    g = apply_spectral_norm(instantiate(cfg.generator))  # covers ConvTranspose2d (normalised over dim 1)
    assert apply_spectral_norm(d) is d  # applying it again changes nothing
    with torch.no_grad():
        for _ in range(10):  # one power iteration per training forward
            d(torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1)
            g(torch.randn(2, cfg.z_dim))
    for net in (d, g):
        assert layers_of(net)
        for layer in layers_of(net):
            weight = layer.weight.detach()  # the normalised weight
            matrix = (weight.transpose(0, 1) if isinstance(layer, nn.ConvTranspose2d) else weight).flatten(1)
            assert torch.linalg.matrix_norm(matrix, ord=2).item() == pytest.approx(1.0, abs=0.05)

    state = d.state_dict()
    assert sum(k.endswith("parametrizations.weight.0._u") for k in state) == len(layers_of(d))
    assert sum(k.endswith("parametrizations.weight.0._v") for k in state) == len(layers_of(d))
    copy = apply_spectral_norm(instantiate(cfg.discriminator))
    copy.load_state_dict(state)
    x = torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size)
    torch.testing.assert_close(copy.eval()(x), d.eval()(x))


def layers_of(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, LAYERS)]
