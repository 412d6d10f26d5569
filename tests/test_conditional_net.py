"""A discriminator that can't be conditioned is refused in one line naming the rule (#37 item 7): the projection
needs D's layers in an nn.Sequential named `net` whose last layer outputs the logit."""

import pytest
import torch
from torch import nn

from tests.conftest import FAST, run_cli


class NoNet(nn.Module):
    """Layers kept under another name."""

    def __init__(self, channels: int, image_size: int, **unused) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size**2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).view(-1)


class NetWithoutLogit(NoNet):
    """`net` exists but ends in 4 values per image, averaged by forward."""

    def __init__(self, channels: int, image_size: int, **unused) -> None:
        super().__init__(channels, image_size)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size**2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(1)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "why"), [("NoNet", "has no nn.Sequential attribute `net`"),
                                           ("NetWithoutLogit", "its `net` ends in 4 values per image, not one logit")])
def test_a_conditional_run_refuses_a_discriminator_without_its_layers_in_net(data_dir, tmp_path, name, why) -> None:
    refused = run_cli("src.train", "model=mlp_gan", "model.conditional=true", "model.generator.width=8",
                      f"model.discriminator._target_=tests.test_conditional_net.{name}", *FAST,
                      f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path / 'run'}")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr[-3000:]
    assert refused.stderr.startswith(f"Error: model.conditional=true: tests.test_conditional_net.{name} {why}; the "
                                     "projection discriminator needs D's layers in an nn.Sequential attribute named "
                                     "`net` whose last layer outputs D's logit")
