"""TF32 tensor cores for fp32 matrix products on CUDA GPUs: `float32_matmul_precision` (conf/train.yaml).

torch leaves fp32 matrix products (Linear layers) at full precision ("highest") unless told otherwise, while its
convolutions already use TF32 (torch.backends.cudnn.allow_tf32 is on by default); Lightning warns about it at every
start on such a GPU. CPUs are left alone, so CPU runs stay bitwise what they were."""

import lightning as L
import torch

from src.run.errors import UserError

PRECISIONS = ("highest", "high", "medium")


def set_matmul_precision(trainer: L.Trainer, precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"float32_matmul_precision must be one of {', '.join(PRECISIONS)}, got {precision}")
    if trainer.strategy.root_device.type == "cuda":
        torch.set_float32_matmul_precision(precision)
