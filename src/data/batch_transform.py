"""The batch-wise twin of the per-item pipeline Grayscale -> Resize -> CenterCrop -> ToTensor -> Normalize.

It turns uint8 (N, C, H, W) batches into float images in [-1, 1] at the model's size, on whatever device the batch
is on. Each step follows what torchvision does on PIL images, so both paths give the same pixels within one 8-bit
level (tests/test_data_fast.py measures it):
- RGB -> L uses PIL's fixed-point ITU-R 601-2 luma, bit-exact; L -> RGB repeats the channel.
- PIL resizes with antialiased bilinear filters and rounds to uint8; F.interpolate(antialias=True) then rounding
  is the same filter up to PIL's fixed-point arithmetic.
"""

import torch
import torch.nn.functional as F

# PIL's L = R * 299/1000 + G * 587/1000 + B * 114/1000, in 16-bit fixed point with rounding (Convert.c).
_LUMA = (19595, 38470, 7471)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    if images.size(1) == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    rgb = images.to(torch.int32)
    luma = rgb[:, 0] * _LUMA[0] + rgb[:, 1] * _LUMA[1] + rgb[:, 2] * _LUMA[2] + (1 << 15)
    return (luma >> 16).to(torch.uint8).unsqueeze(1)


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision's Resize(int): the shorter side becomes `size`, the longer keeps the aspect ratio (floored)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


class BatchTransform:
    def __init__(self, image_size: int, channels: int) -> None:
        self.image_size, self.channels = image_size, channels

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = to_channels(images, self.channels).to(torch.float32, copy=True)  # ours: normalised in place below
        height, width = x.shape[-2:]
        new_height, new_width = resized_shape(height, width, self.image_size)
        if (new_height, new_width) != (height, width):
            x = F.interpolate(x, size=(new_height, new_width), mode="bilinear", antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255)
        if (new_height, new_width) == (self.image_size, self.image_size):
            return x.div_(127.5).sub_(1.0)  # in place: a third faster on a CPU than a new tensor
        top = int(round((new_height - self.image_size) / 2.0))
        left = int(round((new_width - self.image_size) / 2.0))
        x = x[..., top : top + self.image_size, left : left + self.image_size]
        return x.div(127.5).sub_(1.0)  # a new tensor: contiguous, as the crop view is not
