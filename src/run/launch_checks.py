"""Refuse launch combinations that silently go wrong."""

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, open_dict, read_write

from src.core.checks import require_writable, several_devices
from src.core.commands import override
from src.core.errors import SweepError, UserError
from src.core.layout import RunFolder
from src.core.run_lock import own_run_folder, reserve_new_folder
from src.run.cli import exit_with
from src.run.resume import resumed_run, slurm_restarts

SLURM_LAUNCHERS = ("slurm", "submitit_slurm")


def _spawns_processes(trainer: DictConfig) -> bool:
    """True when Lightning would re-launch this script once per device (DDP's subprocess launcher)."""
    strategy = str(trainer.get("strategy", "auto"))
    if "spawn" in strategy or "notebook" in strategy:
        return False
    many = int(trainer.get("num_nodes", 1) or 1) > 1 or several_devices(trainer)
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
    raise SweepError(
        f"multirun (-m) with trainer.devices={cfg.trainer.get('devices')} would re-launch the whole sweep in every "
        "DDP process: use hydra/launcher=slurm (SLURM starts one task per device), or run the jobs one by one"
    )


def refuse_to_overwrite(folder: Path) -> None:
    """A new run in the folder of another one would replace its checkpoints and weights: one line, nothing written."""
    saved = RunFolder(folder).checkpoints
    if checkpoints := sorted(saved.glob("*.ckpt")):
        exit_with(UserError(
            f"hydra.run.dir={folder} holds a run already ({len(checkpoints)} checkpoint(s) in {saved}): continue it "
            f"with python -m src.train {override('resume', folder)}, "
            "or start this run in another folder (drop hydra.run.dir= for a new one)"))


class OutputFolderCheck(Callback):
    """Hydra creates the run (or sweep) folder before any of our code runs and answers a failure with a traceback:
    check the folder first and say what to do in one line."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")
        given = any(o.startswith("hydra.run.dir=") for o in config.hydra.overrides.hydra)
        new_run = resumed_run(config.get("resume"), config.get("ckpt_path")) is None
        if not given and new_run:
            with open_dict(config), read_write(config):  # a new run's default name, made unique
                config.hydra.run.dir = str(reserve_new_folder(Path(config.hydra.run.dir)))
        try:  # before Hydra writes its records into it: a folder in use stays as its owner left it
            own_run_folder(Path(config.hydra.run.dir))
        except UserError as err:
            exit_with(err)
        if given and new_run and not slurm_restarts():
            refuse_to_overwrite(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")

    @staticmethod
    def _check(folder: str, key: str) -> None:
        try:
            require_writable(Path(folder), key, f"{key}=outputs/my_run")
        except UserError as err:
            exit_with(err)
