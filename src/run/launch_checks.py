"""Refuse launch combinations that silently go wrong."""

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from src.core.checks import require_writable, several_devices
from src.core.commands import command, override
from src.core.errors import SweepError, UserError
from src.core.layout import RunFolder
from src.core.run_lock import holds, own_run_folder, release_run_folder, reserve_new_folder
from src.run.cli import exit_with
from src.run.resume import require_resumable, resumed_run, slurm_restarts

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


def refuse_to_overwrite(folder: Path, named: str, elsewhere: str) -> None:
    """A new run in the folder of another one would replace its checkpoints and weights: one line, nothing written."""
    saved = RunFolder(folder).checkpoints
    if checkpoints := sorted(saved.glob("*.ckpt")):
        resume = command("src.train", override("resume", folder))
        raise UserError(f"{named} holds a run already ({len(checkpoints)} checkpoint(s) in {saved}): continue it "
                        f"with {resume}, or start this run in another folder ({elsewhere})")


class OutputFolderCheck(Callback):
    """Hydra creates the run (or sweep) folder before any of our code runs and answers a failure with a traceback:
    check the folder first and say what to do in one line. A run takes its folder (src/core/run_lock.py) before
    Hydra writes its records there; so does each job of a sweep, whose records this callback writes itself once the
    job owns its folder (hydra.output_subdir is null for sweep jobs: src/run/resume.py hydra_subdir)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:  # Hydra turns an exception here into a warning and goes on: every failure must stop the command
            self._take_run_folder(config)
        except UserError as err:
            exit_with(err)
        except OSError as err:
            exit_with(UserError(f"hydra.run.dir={config.hydra.run.dir} can't be prepared ({err.strerror or err}): "
                                "nothing was written; fix the folder or pick another one with hydra.run.dir="))

    def _take_run_folder(self, config: DictConfig) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")
        given = any(o.startswith("hydra.run.dir=") for o in config.hydra.overrides.hydra)
        resumed = resumed_run(config.get("resume"), config.get("ckpt_path"))
        if resumed is not None and config.get("resume"):
            require_resumable(Path(config.resume))  # before anything is written in a folder that is not a run
        if not given and resumed is None:
            with open_dict(config), read_write(config):  # a new run's default name, made unique
                config.hydra.run.dir = str(reserve_new_folder(Path(config.hydra.run.dir)))
        own_run_folder(Path(config.hydra.run.dir))  # before Hydra writes its records: a folder in use stays as it is
        if given and resumed is None and not slurm_restarts():
            refuse_to_overwrite(Path(config.hydra.run.dir), f"hydra.run.dir={config.hydra.run.dir}",
                                "drop hydra.run.dir= for a new one")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._check(config.hydra.sweep.dir, "hydra.sweep.dir")
        except UserError as err:
            exit_with(err)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep job is a run: it takes its folder and is refused the folder of a finished run, like a run; a
        refusal fails this job (require_own_run_folder, when it starts), the sweep goes on with the others."""
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return
        folder = Path(config.hydra.runtime.output_dir)
        try:
            own_run_folder(folder)
            if not slurm_restarts():
                refuse_to_overwrite(folder, f"this sweep job's folder {folder}",
                                    "another hydra.sweep.dir= or hydra.sweep.subdir=")
            write_hydra_records(config, folder / RunFolder.HYDRA_DIR)
        except (UserError, OSError) as err:
            release_run_folder(folder)
            _refused[folder.resolve()] = str(err)

    @staticmethod
    def _check(folder: str, key: str) -> None:
        require_writable(Path(folder), key, f"{key}=outputs/my_run")


_refused: dict[Path, str] = {}  # a sweep job's folder -> why the job may not run there


def write_hydra_records(config: DictConfig, folder: Path) -> None:
    """Hydra's three records of a job (config.yaml, hydra.yaml, overrides.yaml), as Hydra writes them for a run."""
    task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("config.yaml", task), ("hydra.yaml", OmegaConf.masked_copy(config, ["hydra"])),
                          ("overrides.yaml", config.hydra.overrides.task)):
        OmegaConf.save(content, folder / name)


def require_own_run_folder() -> None:
    """Fail closed: training starts only in a folder this process owns. A refused sweep job fails here with the
    reason its start recorded; a lock that no callback took (a callback's failure is only a warning to Hydra) stops
    the command rather than letting it train unguarded."""
    if not HydraConfig.initialized():
        return
    folder = Path(HydraConfig.get().runtime.output_dir).resolve()
    if folder in _refused:
        raise UserError(_refused.pop(folder))
    if not holds(folder):
        raise UserError(f"{folder} was not locked for this command (see the warning above): nothing was trained; "
                        "fix what it says and run again")


def release_job_folder() -> None:
    """The end of a sweep job: the next job of this process may take the folder (e.g. resume it)."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        release_run_folder(Path(HydraConfig.get().runtime.output_dir))
