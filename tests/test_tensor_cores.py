"""float32_matmul_precision (conf/train.yaml) turns on TF32 for fp32 matrix products on CUDA GPUs only."""

from types import SimpleNamespace

import pytest
import torch

from src.run.errors import UserError
from src.run.tensor_cores import set_matmul_precision


def trainer_on(device: str) -> SimpleNamespace:
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))


@pytest.fixture
def matmul_precision():
    before = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(before)


def test_a_gpu_run_gets_the_configured_precision(matmul_precision, monkeypatch) -> None:
    set_to = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", set_to.append)
    set_matmul_precision(trainer_on("cuda"), "high")
    assert set_to == ["high"]


def test_a_cpu_run_keeps_full_fp32(matmul_precision) -> None:
    torch.set_float32_matmul_precision("highest")
    set_matmul_precision(trainer_on("cpu"), "medium")
    assert torch.get_float32_matmul_precision() == "highest"


def test_an_unknown_precision_is_one_line() -> None:
    with pytest.raises(UserError, match="float32_matmul_precision must be one of highest, high, medium, got fast"):
        set_matmul_precision(trainer_on("cpu"), "fast")
