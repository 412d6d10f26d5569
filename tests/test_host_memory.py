"""CPU memory freed by one batch is reused by the next (src/core/host_memory.py) instead of being handed back to
the OS and page-faulted in again."""

import platform
import subprocess
import sys

import pytest

import src.train
from tests.conftest import ROOT

# A fresh process (mallopt settings last for the life of a process) that allocates, fills and frees a 48 MiB tensor
# 5 times, then 20 times more, and prints the page faults of those 20: glibc maps a block that large afresh every
# time by default. With the fixed thresholds the heap settles within the first two or three blocks (an aligned block
# may not fit the hole the last one left, depending on where small allocations landed), then reuses.
FAULTS = """
import resource, sys, torch
from src.core.host_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def block():
    torch.ones(12 << 20).sum()
for _ in range(5):
    block()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.slow  # starts a process
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_are_reused_not_faulted_in_again() -> None:
    default, kept = page_faults("default"), page_faults("keep")
    block = (12 << 20) * 4 // 4096  # pages of 4 KiB in one 48 MiB block of float32
    assert default > 20 * block * 0.9  # faulted in every time
    assert kept < block  # not one block in 20


@pytest.mark.parametrize("keep", [True, False])
def test_training_sets_it_as_configured(train_cfg, monkeypatch, keep: bool) -> None:
    calls = []
    monkeypatch.setattr(src.train, "keep_freed_memory", lambda: calls.append(True))
    src.train.train(train_cfg("model=mlp_gan", f"keep_freed_memory={keep}", "max_batches=1", "~logger", "~callbacks"))
    assert calls == ([True] if keep else [])
