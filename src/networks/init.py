"""Weight initialisation and size checks shared by every architecture."""

from torch import nn

from src.core.errors import UserError


def dcgan_init(module: nn.Module) -> None:
    """DCGAN init (Radford et al.): conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def require_size(model: str, image_size: int, supported: int) -> None:
    if image_size != supported:
        raise UserError(
            f"model {model} produces {supported}x{supported} images, not {image_size}x{image_size}: "
            f"leave model.image_size at {supported} (the data is resized to it)"
        )


def require_multiple(model: str, image_size: int, factor: int) -> None:
    if image_size <= 0 or image_size % factor:
        raise UserError(
            f"model {model} needs model.image_size to be a positive multiple of {factor}, "
            f"got {image_size}: try {max(factor, round(image_size / factor) * factor)}"
        )
