"""The scaling paths work on CPU: DDP over gloo, mixed precision, torch.compile, Hydra multirun and its presets."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins import MixedPrecision
from omegaconf import open_dict

from src.core.instantiate import instantiate
from src.data.synthetic import write_mnist
from src.run.compose import CONF_DIR, compose_config
from src.train import train
from tests.conftest import run_cli

# Besides the default BCE, an objective that adds a double backward (R1), parametrized layers (spectral norm),
# random augmentation, a learning-rate schedule and class conditioning (labels, projection D) to every path.
OBJECTIVES = {"bce": [], "hinge_sn_diffaugment_r1_decay_conditional": [
    "loss=hinge", "model.spectral_norm=true", "augment=diffaugment", "regularizer=r1", "regularizer.every=1",
    "scheduler=linear_decay", "model.conditional=true"]}


@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_ddp_on_two_cpu_processes_and_its_checkpoint_loads_in_one(tmp_path: Path, objective: str) -> None:
    write_mnist(tmp_path / "data", n_train=64)
    result = run_cli("src.train", "trainer=ddp_cpu", "model=dcgan", "max_batches=3", "data.batch_size=8",
                     "data.num_workers=0", f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}",
                     *OBJECTIVES[objective], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MEMBER: 2/2" in result.stderr + result.stdout
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3  # 3 batches, counted once (not per rank)
    cfg = compose_config("train", ["model=dcgan", *OBJECTIVES[objective]])
    gan = instantiate(cfg.model)
    gan.load_state_dict(ckpt["state_dict"])  # plain keys: no DDP `module.` prefix, loads in one process


class RecordPrecision(L.Callback):
    """Test-only: the precision each training batch ran under, kept on the class for the test."""

    seen: list[str] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        RecordPrecision.seen.append(trainer.precision)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_bf16_mixed_trains_on_cpu(train_cfg, objective: str) -> None:
    cfg = train_cfg("model=dcgan", "trainer.precision=bf16-mixed", "~logger", "~callbacks", *OBJECTIVES[objective])
    with open_dict(cfg):
        cfg.callbacks = {"precision": {"_target_": f"{__name__}.RecordPrecision"}}
    RecordPrecision.seen.clear()
    metrics = train(cfg)
    assert RecordPrecision.seen == ["bf16-mixed", "bf16-mixed"]  # the override reached the trainer, both batches
    assert torch.isfinite(torch.tensor([metrics["loss/g"], metrics["loss/d"]])).all()


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_fp16_grad_scaler_steps_both_optimizers(train_cfg, objective: str) -> None:
    """16-mixed with a GradScaler (what GPUs use): backward -> step per optimizer, both networks move."""
    cfg = train_cfg("model=dcgan", *OBJECTIVES[objective])
    gan, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    before = {k: v.clone() for k, v in gan.state_dict().items() if k.endswith("weight")}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    trainer = L.Trainer(accelerator="cpu", max_steps=8, plugins=[MixedPrecision("16-mixed", "cpu", scaler)],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(gan, datamodule)
    assert trainer.precision == "16-mixed" and 0 < scaler.get_scale() < 2.0**16  # it backed off from overflow
    moved = {k.split(".")[0] for k, v in gan.state_dict().items() if k in before and not torch.equal(v, before[k])}
    assert moved == {"generator", "discriminator"}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_compile_trains_and_keeps_plain_state_dict_keys(train_cfg, objective: str) -> None:
    """Compiled G and D; R1's double backward runs D eagerly (compiled graphs can't), the rest stays compiled."""
    cfg = train_cfg("model=mlp_gan", "model.compile=true", "~logger", *OBJECTIVES[objective])
    train(cfg)
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    wrapped = "net." if "model.conditional=true" in OBJECTIVES[objective] else ""  # the conditional G wraps the net
    assert f"generator.{wrapped}net.0.0.weight" in ckpt["state_dict"]
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])


@pytest.mark.slow  # starts a process
def test_multirun_gives_a_folder_per_job_and_a_summary(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=32)
    result = run_cli("src.train", "-m", "model=mlp_gan", "model.lr_g=1e-4,2e-4", "max_batches=2", "data.batch_size=8",
                     "data.num_workers=0", "~logger", f"paths.data_dir={tmp_path / 'data'}",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads((tmp_path / "sweep/summary.json").read_text())
    assert [r["job"] for r in records] == [0, 1] and all(r["status"] == "COMPLETED" for r in records)
    assert "model.lr_g=0.0002" in records[1]["overrides"] and Path(records[1]["folder"], "generator.pt").is_file()
    assert Path(records[1]["folder"]).name.startswith("1_") and "model.lr_g=0.0002" in records[1]["folder"]
    assert Path(records[1]["folder"]).name.startswith("1_model.lr_g=0.0002,")  # the swept key first
    assert "| 1 | 0.0002 | COMPLETED | " in (tmp_path / "sweep/summary.md").read_text()


@pytest.mark.slow  # starts a process
def test_multirun_with_ddp_stops_with_a_pointer_to_slurm(tmp_path: Path) -> None:
    result = run_cli("src.train", "-m", "trainer=ddp_cpu", "model.lr_g=1e-4,2e-4", f"hydra.sweep.dir={tmp_path}",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: multirun (-m) with trainer.devices=2")
    assert "hydra/launcher=slurm" in result.stderr and not (tmp_path / "0" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["hydra/launcher=joblib"],
         {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -1}),
        (["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
         {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "tasks_per_node": 4,
          "gpus_per_node": 4, "nodes": 2}),
        (["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2"], {"tasks_per_node": 2, "nodes": 2}),
    ],
)
def test_sweep_presets_compose(overrides: list[str], expected: dict) -> None:
    """The launcher presets resolve to the plugin's class and take their sizes from the trainer group."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)  # the hydra node is what's tested
    got = {key: OmegaConf.select(cfg, f"hydra.launcher.{key}") for key in expected}
    assert got == expected
    get_class(cfg.hydra.launcher._target_)  # the plugin is installed and the class exists
