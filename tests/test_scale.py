"""Scaling paths on CPU: DDP over gloo, mixed precision, torch.compile, Hydra multirun and its presets."""

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins import MixedPrecision

from src.cli import instantiate
from src.train import train
from tests.conftest import compose_config
from tests.fakedata import write_mnist

ROOT = Path(__file__).resolve().parents[1]


def run_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "src.train", *overrides], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_ddp_on_two_cpu_processes_and_its_checkpoint_loads_in_one(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=64)
    result = run_train("trainer=ddp_cpu", "model=dcgan", "max_batches=3", "data.batch_size=8", "data.num_workers=0",
                       f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MEMBER: 2/2" in result.stderr + result.stdout
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6  # 3 batches x 2 optimizer steps, counted once (not per rank)
    cfg = compose_config("train", ["model=dcgan"])
    gan = instantiate(cfg.model)
    gan.load_state_dict(ckpt["state_dict"])  # plain keys: no DDP `module.` prefix, loads in one process


def test_bf16_mixed_trains_on_cpu(train_cfg) -> None:
    metrics = train(train_cfg("model=dcgan", "trainer.precision=bf16-mixed", "~logger", "~callbacks"))
    assert torch.isfinite(torch.tensor([metrics["loss/g"], metrics["loss/d"]])).all()


def test_fp16_grad_scaler_steps_both_optimizers(train_cfg) -> None:
    """16-mixed with a GradScaler (what GPUs use): backward -> step per optimizer, both networks move."""
    cfg = train_cfg("model=dcgan")
    gan, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    before = {k: v.clone() for k, v in gan.state_dict().items() if k.endswith("weight")}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    trainer = L.Trainer(accelerator="cpu", max_steps=8, plugins=[MixedPrecision("16-mixed", "cpu", scaler)],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(gan, datamodule)
    assert trainer.precision == "16-mixed" and 0 < scaler.get_scale() < 2.0**16  # it backed off from overflow
    moved = {k.split(".")[0] for k, v in gan.state_dict().items() if k in before and not torch.equal(v, before[k])}
    assert moved == {"generator", "discriminator", "ema"}  # the EMA copy of G follows G


def test_compile_trains_and_keeps_plain_state_dict_keys(train_cfg) -> None:
    cfg = train_cfg("model=mlp_gan", "model.compile=true", "~logger")
    train(cfg)
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert "generator.net.0.0.weight" in ckpt["state_dict"]
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])


def test_multirun_gives_a_folder_per_job_and_a_summary(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=32)
    result = run_train("-m", "model=mlp_gan", "model.lr_g=1e-4,2e-4", "max_batches=2", "data.batch_size=8",
                       "data.num_workers=0", "~logger", f"paths.data_dir={tmp_path / 'data'}",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads((tmp_path / "sweep/summary.json").read_text())
    assert [r["job"] for r in records] == [0, 1] and all(r["status"] == "COMPLETED" for r in records)
    assert "model.lr_g=0.0002" in records[1]["overrides"] and (tmp_path / "sweep/1/generator.pt").is_file()
    assert "| 1 | `model=mlp_gan model.lr_g=0.0002" in (tmp_path / "sweep/summary.md").read_text()


def test_multirun_with_ddp_stops_with_a_pointer_to_slurm(tmp_path: Path) -> None:
    result = run_train("-m", "trainer=ddp_cpu", "model.lr_g=1e-4,2e-4", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: multirun (-m) with trainer.devices=2")
    assert "hydra/launcher=slurm" in result.stderr and not (tmp_path / "0" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("overrides", "key", "expected"),
    [
        (["hydra/launcher=joblib"], "hydra.launcher._target_", "hydra_plugins.hydra_joblib_launcher"),
        (["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
         "hydra.launcher.tasks_per_node", 4),
        (["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2"], "hydra.launcher.nodes", 2),
    ],
)
def test_sweep_presets_compose(overrides: list[str], key: str, expected) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    value = OmegaConf.select(cfg, key)
    assert value == expected or str(value).startswith(str(expected))
