"""Process settings per device (src/core/device_settings.py): TF32 on CUDA GPUs only, CUDA's own availability check
on CPUs."""

import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from src.core.device_settings import NVML_CHECK, apply_device_settings
from src.core.errors import UserError


def trainer_on(device: str, precision: str = "32-true") -> SimpleNamespace:
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), precision=precision)


def test_a_gpu_run_gets_the_configured_matmul_precision(monkeypatch) -> None:
    set_to = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", set_to.append)
    monkeypatch.setenv(NVML_CHECK, "1")
    apply_device_settings(trainer_on("cuda"), "high")
    assert set_to == ["high"] and os.environ[NVML_CHECK] == "1"


def test_a_cpu_run_keeps_full_fp32_and_cudas_own_availability_check(monkeypatch) -> None:
    before = torch.get_float32_matmul_precision()
    monkeypatch.setenv(NVML_CHECK, "1")  # what importing Lightning sets
    apply_device_settings(trainer_on("cpu"), "medium")
    assert torch.get_float32_matmul_precision() == before
    assert NVML_CHECK not in os.environ


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32-true"])
def test_half_precision_on_a_cpu_gets_a_hint(precision: str, logged) -> None:
    import lightning as L

    trainer = L.Trainer(accelerator="cpu", precision=precision, logger=False, enable_progress_bar=False)
    apply_device_settings(trainer, "high")
    said = logged()  # 16-mixed becomes bf16-mixed on a CPU (Lightning)
    hint = re.search(r"\[trainer\] trainer\.precision=(\S+) on a CPU is usually slower than full precision", said)
    assert (hint is not None) == (precision != "32-true"), said
    assert hint is None or hint.group(1) == str(trainer.precision)


@pytest.mark.slow  # starts a process
def test_importing_lightning_still_sets_the_nvml_check_that_cpu_runs_take_back() -> None:
    """When a Lightning release stops setting it, device_settings.py can drop its CPU part."""
    code = f"import os, lightning; print(os.environ.get({NVML_CHECK!r}))"
    env = {k: v for k, v in os.environ.items() if k != NVML_CHECK}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "1"


def test_an_unknown_precision_is_one_line() -> None:
    with pytest.raises(UserError, match="float32_matmul_precision must be one of highest, high, medium, got fast"):
        apply_device_settings(trainer_on("cpu"), "fast")
