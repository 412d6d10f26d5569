"""Spectral normalisation (Miyato et al. 2018) for any of the architectures: divides each layer's weight by its
largest singular value, estimated by one power iteration per training forward."""

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise every conv, transposed conv and linear weight inside `module`, in place; returns it.

    The weight becomes a parametrization: state_dict keys turn into `<layer>.parametrizations.weight.original`
    plus the power iteration's vectors `...weight.0._u` / `_v`. Layers already parametrized are left alone."""
    for layer in list(module.modules()):
        if isinstance(layer, LAYERS) and not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
    return module
