"""CPU memory freed by one batch is reused by the next (src/core/host_memory.py) instead of being handed back to
the OS and page-faulted in again."""

import platform
import subprocess
import sys

import pytest

import src.train
from tests.conftest import ROOT

# A fresh process (mallopt settings last for the life of a process) that allocates, fills and frees a 48 MiB tensor
# 8 times and prints the page faults of the last 7: glibc maps a block that large afresh every time by default.
FAULTS = """
import resource, sys, torch
from src.core.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def block():
    torch.ones(12 << 20).sum()
block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(7):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_are_reused_not_faulted_in_again() -> None:
    default, kept = page_faults("default"), page_faults("keep")
    assert default > 7 * 10_000  # 12,288 pages of 4 KiB per block, faulted in every time
    assert kept < default / 5


@pytest.mark.parametrize("keep", [True, False])
def test_training_sets_it_as_configured(train_cfg, monkeypatch, keep: bool) -> None:
    calls = []
    monkeypatch.setattr(src.train, "keep_freed_memory", lambda: calls.append(True))
    src.train.train(train_cfg("model=mlp_gan", f"keep_freed_memory={keep}", "max_batches=1", "~logger", "~callbacks"))
    assert calls == ([True] if keep else [])
