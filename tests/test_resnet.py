"""The SNGAN/BigGAN ResNets (model=resnet32/48/64, src/networks/resnet.py): the published layouts, shapes at every
size and channel count, residual blocks, SNGAN's initialisation, the discriminator the projection D can wrap, spectral
norm on by default, and training through the real entry points (conditional, bf16, the sngan_resnet preset, exact
resume). Tiny widths keep the runs fast; the published widths are checked without running them."""

import math
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from torch import nn
from torch.nn.utils import parametrize

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.data.synthetic import write_mnist
from src.networks.conditional import ClassBatchNorm, ProjectionDiscriminator
from src.networks.resnet import DownBlock, SumPool, UpBlock
from src.run.compose import compose_config
from src.train import train
from tests.conftest import run_cli, small_widths

SIZES = {"resnet32": 32, "resnet48": 48, "resnet64": 64}
TINY = small_widths("resnet32")


def blocks(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


def conv_channels(block_list: list[nn.Module]) -> list[int]:
    return [b.conv2.out_channels for b in block_list]


@pytest.mark.parametrize(("model", "g_layout", "base", "d_layout", "pooled"), [
    # SNGAN's CIFAR-10 ResNet: G 256 throughout from 4x4, D 128 throughout, pooling in its first two blocks (-> 8x8)
    ("resnet32", [256, 256, 256], 4, [128, 128, 128, 128], [True, True, False, False]),
    # SNGAN's STL-10 ResNet: G 512 at 6x6 halving to 64, D 64 doubling to 1024, the last block at 3x3
    ("resnet48", [256, 128, 64], 6, [64, 128, 256, 512, 1024], [True, True, True, True, False]),
    # 64 px: G 1024 at 4x4 halving to 64, D 64 doubling to 1024, the last block at 4x4
    ("resnet64", [512, 256, 128, 64], 4, [64, 128, 256, 512, 1024], [True, True, True, True, False]),
])
def test_published_layouts(model: str, g_layout: list[int], base: int, d_layout: list[int], pooled: list[bool]) -> None:
    cfg = compose_config("train", [f"model={model}", "data=cifar10"]).model
    assert (cfg.image_size, cfg.z_dim, cfg.spectral_norm, cfg.discriminator.batch_norm) == (SIZES[model], 128, True,
                                                                                            False)
    generator, discriminator = instantiate(cfg.generator), instantiate(cfg.discriminator)
    assert generator.base == base and generator.base * 2 ** len(g_layout) == cfg.image_size
    assert generator.project.out_features == generator.base_channels * base * base
    assert conv_channels(blocks(generator, UpBlock)) == g_layout
    down = blocks(discriminator, DownBlock)
    assert conv_channels(down) == d_layout
    assert [isinstance(b.pool, nn.AvgPool2d) for b in down] == pooled
    assert discriminator.net[-1].in_features == d_layout[-1]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("model", list(SIZES))
def test_shapes_for_every_size_and_channel_count(model: str, channels: int) -> None:
    cfg = compose_config("train", [f"model={model}", f"data={'mnist' if channels == 1 else 'cifar10'}", *TINY])
    size = SIZES[model]
    generator, discriminator = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    images = generator(torch.randn(4, 128))  # train mode: BatchNorm on batch statistics
    assert images.shape == (4, channels, size, size) and images.abs().max() <= 1
    assert discriminator(images).shape == (4,)


def test_channels_last_gives_the_same_outputs() -> None:
    """NHWC weights and images (model.channels_last, the default) compute what NCHW does, odd 3x3 maps included."""
    torch.manual_seed(0)
    cfg = compose_config("train", ["model=resnet48", "data=cifar10", *TINY]).model
    generator, discriminator = instantiate(cfg.generator).eval(), instantiate(cfg.discriminator).eval()
    z = torch.randn(2, 128)
    with torch.no_grad():
        images, logits = generator(z), discriminator(generator(z))
        generator.to(memory_format=torch.channels_last), discriminator.to(memory_format=torch.channels_last)
        torch.testing.assert_close(generator(z), images)
        torch.testing.assert_close(discriminator(images.contiguous(memory_format=torch.channels_last)), logits)


def test_discriminator_ends_in_relu_sum_pooling_linear_and_is_spectrally_normalised_by_default() -> None:
    gan = instantiate(compose_config("train", ["model=resnet32", *TINY]).model)
    net = gan.discriminator.net
    assert isinstance(net, nn.Sequential) and isinstance(net[-1], nn.Linear) and net[-1].out_features == 1
    assert isinstance(net[-2], SumPool) and isinstance(net[-3], nn.ReLU)
    assert isinstance(net[0], DownBlock) and isinstance(net[0].act_in, nn.Identity)  # the optimized first block
    assert all(isinstance(b.act_in, nn.ReLU) for b in net[1:-3])
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)  # spectral norm everywhere in D
    assert not any(parametrize.is_parametrized(m) for m in gan.generator.modules())
    # Global sum pooling (not a mean): the features are the sum over the 8x8 positions of the last block's ReLU.
    gan.eval()
    image = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        hidden = net[:-3](image)
        assert hidden.shape[-2:] == (8, 8)  # SNGAN's CIFAR D: two poolings, two blocks at 8x8
        torch.testing.assert_close(net[:-1](image), hidden.relu().sum(dim=(2, 3)))


def test_blocks_are_residual() -> None:
    torch.manual_seed(0)
    up, down, plain = UpBlock(4, 6), DownBlock(6, 6, downsample=True), DownBlock(6, 6, downsample=False)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        for block in (up, down, plain):
            block.conv2.weight.zero_()  # the residual branch now adds nothing
            block.conv2.bias.zero_()
        skip = up(x)
        assert skip.shape == (2, 6, 10, 10) and skip.abs().sum() > 0
        torch.testing.assert_close(skip, nn.functional.interpolate(up.shortcut(x), scale_factor=2))
        h = torch.randn(2, 6, 8, 8)
        torch.testing.assert_close(down(h), down.shortcut(nn.functional.avg_pool2d(h, 2)))
        assert isinstance(plain.shortcut, nn.Identity) and torch.equal(plain(h), h)  # same channels: identity
        nn.init.normal_(plain.conv2.weight)
        assert not torch.allclose(plain(h), h)


def test_sngan_initialisation() -> None:
    """Xavier-uniform: gain sqrt(2) in the blocks' 3x3 convs, 1 for shortcuts and the input/output layers."""
    torch.manual_seed(0)
    cfg = compose_config("train", ["model=resnet32"]).model
    generator, discriminator = instantiate(cfg.generator), instantiate(cfg.discriminator)

    def gain(layer: nn.Module) -> float:  # the uniform's bound is gain * sqrt(6 / (fan_in + fan_out))
        weight = layer.weight.detach()
        receptive = weight[0, 0].numel() if weight.dim() == 4 else 1
        bound = math.sqrt(6 / ((weight.size(0) + weight.size(1)) * receptive))
        assert weight.abs().max() <= bound * math.sqrt(2) + 1e-6
        return weight.std().item() * math.sqrt(3) / bound

    for block in blocks(generator, UpBlock) + blocks(discriminator, DownBlock)[1:]:
        assert gain(block.conv1) == pytest.approx(math.sqrt(2), rel=0.05)
        assert gain(block.conv2) == pytest.approx(math.sqrt(2), rel=0.05)
    for layer in [generator.project, generator.net[-2], discriminator.net[-1],
                  *(b.shortcut for b in blocks(generator, UpBlock))]:
        assert gain(layer) == pytest.approx(1.0, rel=0.2 if layer.weight.numel() < 1000 else 0.05)
        assert not layer.bias.any()


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=resnet32", "model.discriminator.batch_norm=true"], "the resnet models' discriminator has no BatchNorm"),
    (["model=resnet32", "model.image_size=36"], "needs model.image_size to be a positive multiple of 8, got 36"),
    (["model=resnet64", "model.generator.multipliers=[]"], "multipliers a list of at least 2 positive integers"),
    (["model=resnet48", "model.discriminator.downsamples=6"], "model.discriminator.downsamples must be 1..5"),
])
def test_misconfiguration_is_one_clear_error(overrides: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        instantiate(compose_config("train", overrides).model)


def test_other_sizes_and_presets_that_drop_batch_norm_work() -> None:
    gan = instantiate(compose_config("train", ["model=resnet32", "model.image_size=64", *TINY]).model)
    assert gan.generator.base == 8  # 64 / 2**3: the 3 up blocks of resnet32 start from 8x8
    # experiment=sngan (like wgan_gp) sets model.discriminator.batch_norm=false, which every model accepts
    instantiate(compose_config("train", ["experiment=sngan", "model=resnet48", *TINY]).model)


def test_sngan_resnet_preset_is_the_papers_recipe() -> None:
    cfg = compose_config("train", ["experiment=sngan_resnet"])
    model = cfg.model
    assert model.generator._target_ == "src.networks.resnet.Generator" and model.image_size == 32
    assert model.loss._target_.endswith("Hinge") and model.spectral_norm and model.n_critic == 5
    assert (model.lr_g, model.lr_d, list(model.betas)) == (2e-4, 2e-4, [0.0, 0.9])
    assert cfg.scheduler._target_ == "src.gan.schedules.linear_decay"
    assert (list(cfg.optimizer.discriminator.betas), cfg.optimizer.generator.lr) == ([0.0, 0.9], 2e-4)
    assert compose_config("train", ["experiment=sngan_resnet", "model=resnet48"]).model.image_size == 48


@pytest.mark.slow  # starts a process
def test_sngan_resnet_preset_trains_conditional_in_bf16_through_the_cli(tmp_path: Path) -> None:
    """python -m src.train experiment=sngan_resnet (hinge, spectral norm, 5 D steps, linear decay) with class
    BatchNorm in G, the projection D and bf16 autocast."""
    write_mnist(tmp_path / "data")
    run = tmp_path / "run"
    result = run_cli("src.train", "experiment=sngan_resnet", *TINY, "model.conditional=true",
                     "model.class_batch_norm=true", "trainer.precision=bf16-mixed", "max_batches=2",
                     "data.batch_size=8", "data.num_workers=0", f"paths.data_dir={tmp_path / 'data'}",
                     f"hydra.run.dir={run}", "~callbacks.progress_bar", "trainer.enable_progress_bar=false", "~logger",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bfloat16" in result.stdout + result.stderr  # Lightning's line: bf16 autocast is on
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    state = ckpt["state_dict"]
    assert ckpt["global_step"] == 2 and ckpt["hyper_parameters"]["loss"] == "Hinge()"  # batches (5 D + 1 G steps each)
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [2, 2]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert state["discriminator.embed.weight"].shape == (10, 8)  # the projection, on D's 8 summed features
    assert "discriminator.net.net.6.parametrizations.weight.original" in state  # SN on D's Linear, net[-1]
    assert "generator.net.net.0.norm1.scale.weight" in state  # class BatchNorm in G's first block
    gan = instantiate(compose_config("train", ["experiment=sngan_resnet", *TINY, "model.conditional=true",
                                               "model.class_batch_norm=true"]).model)
    gan.load_state_dict(state)
    assert isinstance(gan.discriminator, ProjectionDiscriminator) and blocks(gan.generator, ClassBatchNorm)


def test_resume_after_a_crash_is_exact(tmp_path: Path) -> None:
    """resnet32 (spectral norm's power-iteration vectors, BatchNorm statistics) with the EMA: a crashed run resumed
    from its checkpoint ends bitwise like the uninterrupted run."""
    write_mnist(tmp_path / "data")
    overrides = ["model=resnet32", *TINY, "max_batches=4", "checkpoint_every_n_batches=2", "model.ema_decay=0.9",
                 "model.ema_start=1", "model.ema_bn_batches=1", "model.num_fixed=8", "data.batch_size=8",
                 "data.num_workers=0", f"paths.data_dir={tmp_path / 'data'}", "~logger", "sample_every_n_batches=0",
                 "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]
    train(compose_config("train", overrides, tmp_path / "whole"))
    crashed = compose_config("train", overrides, tmp_path / "resumed")
    with open_dict(crashed):
        crashed.callbacks.crash = {"_target_": "tests.killer.CrashAfterBatch", "batch": 3}
    with pytest.raises(RuntimeError, match="simulated crash after batch 3"):
        train(crashed)
    assert torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)["global_step"] == 2
    train(compose_config("train", [*overrides, f"resume={tmp_path / 'resumed'}"], tmp_path / "resumed"))
    whole, resumed = (torch.load(tmp_path / run / "checkpoints/last.ckpt", weights_only=True)
                      for run in ("whole", "resumed"))
    assert whole["global_step"] == resumed["global_step"] == 4
    torch.testing.assert_close(whole["state_dict"], resumed["state_dict"], rtol=0, atol=0)
    torch.testing.assert_close(whole["optimizer_states"], resumed["optimizer_states"], rtol=0, atol=0)
    assert any(k.startswith("ema.") for k in whole["state_dict"])
    assert any(k.endswith("weight.0._u") for k in whole["state_dict"])  # the power iterations' vectors resumed too
