"""Refuse launch combinations that silently go wrong."""

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig

from src.errors import UserError

SLURM_LAUNCHERS = ("slurm", "submitit_slurm")


def _spawns_processes(trainer: DictConfig) -> bool:
    """True when Lightning would re-launch this script once per device (DDP's subprocess launcher)."""
    devices, nodes = trainer.get("devices", 1), int(trainer.get("num_nodes", 1) or 1)
    strategy = str(trainer.get("strategy", "auto"))
    if "spawn" in strategy or "notebook" in strategy:
        return False
    many = nodes > 1 or devices in (-1, "-1", "auto") or (isinstance(devices, int) and devices > 1)
    many = many or (isinstance(devices, (list, tuple)) and len(devices) > 1)
    return many and not SLURMEnvironment.detect()


def check_multirun_ddp(cfg: DictConfig) -> None:
    """Hydra multirun + DDP's subprocess launcher re-runs the whole sweep in every rank: stop before that happens."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or not _spawns_processes(cfg.trainer):
        return
    launcher = hydra_cfg.runtime.choices.get("hydra/launcher")
    if launcher in SLURM_LAUNCHERS:
        return
    raise UserError(
        f"multirun (-m) with trainer.devices={cfg.trainer.get('devices')} would re-launch the whole sweep in every "
        "DDP process: use hydra/launcher=slurm (SLURM starts one task per device), or run the jobs one by one"
    )
