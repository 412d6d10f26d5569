"""Process settings that depend on the device a run trains on, applied once the Trainer knows it.

- CUDA GPUs: TF32 tensor cores for fp32 matrix products, `float32_matmul_precision` (conf/train.yaml). torch leaves
  them at full precision ("highest") unless told otherwise, while its convolutions already use TF32
  (torch.backends.cudnn.allow_tf32 is on by default); Lightning warns about it at every start on such a GPU.
- CPUs: importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (so that asking whether CUDA is there cannot
  initialise it before a fork). torch then answers torch.cuda.is_available() through NVML without keeping the answer,
  and Adam and AdamW ask at every step: without a GPU driver each step tries to load libnvidia-ml again, ~20% of a
  small model's batch on 2 CPU cores (benchmarks/train.md). A run on the CPU puts CUDA's own check back.
CPU results stay bitwise what they were: neither setting changes a CPU kernel."""

import logging
import os

import lightning as L
import torch

from src.core.errors import UserError

MATMUL_PRECISIONS = ("highest", "high", "medium")
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
log = logging.getLogger(__name__)


def apply_device_settings(trainer: L.Trainer, float32_matmul_precision: str) -> None:
    if float32_matmul_precision not in MATMUL_PRECISIONS:
        raise UserError(f"float32_matmul_precision must be one of {', '.join(MATMUL_PRECISIONS)}, got "
                        f"{float32_matmul_precision}")
    device = trainer.strategy.root_device.type
    if device == "cuda":
        torch.set_float32_matmul_precision(float32_matmul_precision)
    elif device == "cpu":
        os.environ.pop(NVML_CHECK, None)
        if "16" in str(trainer.precision):  # CPUs have few fast half-precision kernels: autocast mostly converts
            log.info(f"[trainer] trainer.precision={trainer.precision} on a CPU is usually slower than full precision "
                     "(half precision pays off on GPUs): drop trainer.precision= for speed here")
