"""Every design network makes images of the configured size and channels in [-1, 1], its discriminator returns
logits, and a size it cannot make is one clear error."""

import pytest
import torch

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.run.compose import compose_config, group_options
from tests.conftest import small_widths


# Every config in conf/model/ with every one in conf/data/: the shapes come from the composed config.
@pytest.mark.parametrize("data", group_options("data"))
@pytest.mark.parametrize("model", group_options("model"))
def test_generator_and_discriminator_shapes(model: str, data: str) -> None:
    cfg = compose_config("train", [f"model={model}", f"data={data}", *small_widths(model)])
    size, channels = cfg.model.image_size, cfg.data.channels
    assert channels in (1, 3) and size > 0
    assert (cfg.model.channels, cfg.data.image_size) == (channels, size)  # the model follows the data, and back

    generator = instantiate(cfg.model.generator).eval()
    discriminator = instantiate(cfg.model.discriminator).eval()
    with torch.no_grad():
        images = generator(torch.randn(3, cfg.model.z_dim))
        logits = discriminator(images)
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1.0  # Tanh output
    assert logits.shape == (3,)
    # Logits, not probabilities: with the last layer's output pushed to 3 (weight 0, bias 3) the output goes past 1.
    last = [m for m in discriminator.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(3.0)
        assert discriminator(images).min() > 1.0


@pytest.mark.parametrize(("model", "size"), [("dcgan28", 28), ("dcgan", 32), ("dcgan64", 64)])
def test_fixed_size_designs_default_to_their_size(model: str, size: int) -> None:
    assert compose_config("train", [f"model={model}"]).model.image_size == size


def test_dcgan_init_statistics() -> None:
    cfg = compose_config("train", ["model=dcgan"])
    generator = instantiate(cfg.model.generator)
    conv = generator.net[0].weight
    bn = generator.net[1].weight
    assert abs(conv.std().item() - 0.02) < 0.005 and abs(conv.mean().item()) < 0.005
    assert abs(bn.mean().item() - 1.0) < 0.02 and bn.std().item() < 0.05


def test_impossible_image_size_is_one_clear_error_from_the_network_too() -> None:
    """Without the config check too (a network built by hand): tests/test_errors.py holds the CLI's cases (dcgan at
    64, dcgan64 at 48, conv_gan at 30); this is the design it leaves out."""
    cfg = compose_config("train", ["model=dcgan28", "model.image_size=32"])
    with pytest.raises(UserError, match="model dcgan28 produces 28x28 images"):
        instantiate(cfg.model.generator)


@pytest.mark.parametrize("size", [16, 40])
def test_flexible_models_follow_image_size(size: int) -> None:
    for model in ("mlp_gan", "conv_gan"):  # the designs whose size is a parameter
        cfg = compose_config("train", [f"model={model}", f"model.image_size={size}", "data=cifar10"])
        gan = instantiate(cfg.model)  # the module checks G and D against the configured shape
        assert gan.generator(gan.fixed_noise[:2]).shape == (2, 3, size, size)
