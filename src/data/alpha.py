"""Images with transparency (RGBA, LA, palette or RGB/L with a transparent colour) as a viewer shows them.

The colour a file stores under a fully transparent pixel is invisible in every viewer, yet `convert("RGB")` keeps it:
icon sets hide orange, teal or brown rectangles there, and a GAN would learn them. These images are composited
onto a background colour first (white by default, as viewers show them); with the alpha kept (RGBA training), the
fully transparent pixels take the background colour and the alpha channel stays.
"""

from collections.abc import Sequence

from PIL import Image, ImageColor

from src.core.errors import UserError

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def has_alpha(image: Image.Image) -> bool:
    """Whether the file can hold transparent pixels (an alpha channel or a transparent colour key); read from the
    header, no pixels decoded."""
    return image.mode in ALPHA_MODES or "transparency" in image.info


def background_colour(value: str | Sequence[int]) -> tuple[int, int, int]:
    """data.background as an RGB triple: a colour name or #rrggbb (PIL's names: white, black, gray, ...), or
    [r, g, b] with each 0-255."""
    try:
        if isinstance(value, str):
            rgb = ImageColor.getrgb(value)[:3]
        else:
            rgb = tuple(int(v) for v in value)
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) or list(rgb) != list(value):
                raise ValueError(value)
    except (ValueError, TypeError):
        raise UserError(f"data.background={value} is not a colour: use a name (white, black, gray), '#rrggbb' or "
                        "[r,g,b] with each 0-255") from None
    return rgb  # type: ignore[return-value]


def flatten(image: Image.Image, background: tuple[int, int, int], keep_alpha: bool = False) -> Image.Image:
    """An image with transparency composited onto `background` (RGB), or with keep_alpha, RGBA whose fully
    transparent pixels hold `background`; an image without transparency is returned as it is (RGBA if keep_alpha)."""
    if not has_alpha(image):
        return image.convert("RGBA") if keep_alpha else image
    rgba = image.convert("RGBA")  # the colour key or palette transparency becomes alpha, no pixel lost
    plain = Image.new("RGBA", rgba.size, (*background, 255))
    if not keep_alpha:
        return Image.alpha_composite(plain, rgba).convert("RGB")
    alpha = rgba.getchannel("A")
    shown = alpha.point(lambda a: 255 if a > 0 else 0)  # a visible pixel keeps its own colour, however faint
    return Image.composite(rgba, Image.merge("RGBA", (*plain.convert("RGB").split(), alpha)), shown)
