"""`make bench-gpu` on a machine without a GPU: its one-line refusal, the plain loop's CPU command line, and the parts
that turn what the processes print into benchmarks/gpu.md (the GPU run itself needs a GPU)."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmarks.bench_gpu import (
    Section,
    Speed,
    SyncedTimer,
    first_batch_seconds,
    job_result,
    one_line_error,
    plain_ms,
    render,
    speed_rows,
    sweep_command,
)
from src.core.instantiate import instantiate
from src.data.synthetic import write_mnist
from src.run.compose import compose_config
from tests.conftest import ROOT


def run_module(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env})


@pytest.mark.slow  # starts a process
def test_without_cuda_it_says_so_in_one_line_and_fails() -> None:
    done = run_module("benchmarks.bench_gpu", CUDA_VISIBLE_DEVICES="")
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1 and "no CUDA GPU" in lines[0]


@pytest.mark.slow  # starts a process
def test_plain_loop_cpu_command_line_unchanged(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    done = run_module("benchmarks.plain_loop", "--model", "dcgan", "--batches", "3", f"paths.data_dir={tmp_path}",
                      "data.batch_size=8")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


@pytest.mark.slow  # starts a process
def test_plain_loop_times_itself_in_a_form_the_bench_reads(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    done = run_module("benchmarks.plain_loop", "--precision", "bf16", "--batch-size", "8", "--batches", "3",
                      "--time-from", "1", f"paths.data_dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "2 batches of 8 timed from batch 1" in done.stdout
    assert plain_ms(done.stdout) > 0


def test_markdown_from_fake_rows() -> None:
    configs = [("dcgan", "32-true", 64), ("dcgan", "bf16-mixed", 64)]
    results = [Speed("dcgan", "bf16-mixed", 64, "plain eager", 10.0),
               Speed("dcgan", "32-true", 64, "project captured", 4.0, "a | b"),
               Speed("dcgan", "32-true", 64, "plain eager", 8.0),
               Speed("dcgan", "bf16-mixed", 64, "project eager", note="failed: Error: x")]
    sections = [Section("Speed", ["a note"], ["model", "precision", "batch", "side", "ms/batch", "images/s",
                                              "vs plain eager", "note"], speed_rows(results, configs)),
                Section("Steps", [], ["what", "command", "result"], [["defaults", "`python -m src.train`", "ok"]])]
    assert render(["- machine: fake"], sections) == "\n".join([
        "# Training speed on a GPU (`make bench-gpu`)",
        "",
        "- machine: fake",
        "",
        "## Speed",
        "",
        "a note",
        "",
        "| model | precision | batch | side | ms/batch | images/s | vs plain eager | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| dcgan | 32-true | 64 | plain eager | 8.00 | 8000 | 1.00x |  |",
        "| dcgan | 32-true | 64 | project captured | 4.00 | 16000 | 2.00x | a \\| b |",
        "| dcgan | bf16-mixed | 64 | plain eager | 10.00 | 6400 | 1.00x |  |",
        "| dcgan | bf16-mixed | 64 | project eager | - | - | - | failed: Error: x |",
        "",
        "## Steps",
        "",
        "| what | command | result |",
        "| --- | --- | --- |",
        "| defaults | `python -m src.train` | ok |",
        "",
    ])


def test_first_batch_time_from_the_done_line() -> None:
    done = ("[2026-12-04 21:49:42,431][src.run.summary][INFO] [done] 5 batches of max_batches=5, this session 11 s, "
            "first batch 11.2 s after the command: outputs/x\n  train more:  python -m src.train resume=outputs/x\n")
    assert first_batch_seconds(done) == 11.2
    assert first_batch_seconds("[done] 5 batches of max_batches=5, this session 11 s: outputs/x") is None
    assert first_batch_seconds("first batch 3.0 s after the command\n[done] 5 batches: outputs/x") is None


def test_one_line_error_prefers_the_projects_error_line() -> None:
    assert one_line_error("Traceback\nError: model.cuda_graph is not a setting\n\n") == \
        "Error: model.cuda_graph is not a setting"
    assert one_line_error("Traceback (most recent call last):\n  ...\nRuntimeError: inductor crashed\n") == \
        "RuntimeError: inductor crashed"
    assert one_line_error("") == "(no output)"


def sweep_job(folder: Path, batch: int) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(
        f"- model=dcgan64\n- trainer.precision=bf16-mixed\n- data.batch_size={batch}\n- max_batches=200\n")
    return folder


def test_sweep_jobs_read_back(tmp_path: Path) -> None:
    timed = sweep_job(tmp_path / "0", 64)
    assert job_result(timed, "project captured") is None  # still running
    (timed / "gpu_timer.json").write_text(json.dumps({"ms_per_batch": 5.0, "images_per_sec": 12800.0}))
    (timed / "train.log").write_text("[2026-12-04 21:49:31,932][x][INFO] [step] model.cuda_graph=true: the step "
                                     "runs eagerly, since it trains on cpu, not a CUDA GPU\n")
    assert job_result(timed, "project captured") == Speed(
        "dcgan64", "bf16-mixed", 64, "project captured", 5.0,
        "[step] model.cuda_graph=true: the step runs eagerly, since it trains on cpu, not a CUDA GPU")
    failed = sweep_job(tmp_path / "1", 256)
    (failed / "job_result.json").write_text(json.dumps({"status": "FAILED", "result": "CUDA out of memory"}))
    assert job_result(failed, "project eager").note == "failed: CUDA out of memory"


def test_the_sweeps_timer_is_a_callback_the_train_config_builds(tmp_path: Path) -> None:
    args = argparse.Namespace(models=["dcgan"], precisions=["32-true"], batches=[64], warmup=5, timed=10,
                              data_dir=tmp_path)
    overrides = [o for o in sweep_command(args, tmp_path, captured=False)[4:] if not o.startswith("hydra.")]
    timer = instantiate(compose_config("train", overrides).callbacks.gpu_timer)
    assert isinstance(timer, SyncedTimer) and (timer.warmup_batches, timer.timed_batches) == (5, 10)


def test_synced_timer_writes_the_timed_window(tmp_path: Path) -> None:
    timer = SyncedTimer(warmup_batches=1, timed_batches=2)
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), world_size=1)
    batch = (torch.zeros(4, 1, 8, 8), torch.zeros(4))
    for i in range(3):
        timer.on_train_batch_start(trainer, None, batch, i)
        assert not (tmp_path / "gpu_timer.json").exists()
        timer.on_train_batch_end(trainer, None, None, batch, i)
    measured = json.loads((tmp_path / "gpu_timer.json").read_text())
    assert measured["images_per_sec"] * measured["ms_per_batch"] / 1e3 == pytest.approx(4)
