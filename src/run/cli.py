"""What every command-line entry point shares: one-line errors for user mistakes, and the
exit status of a run stopped by a signal.

It imports neither torch nor Lightning (a function that needs them imports them): `--help`, `--cfg job` and a refused
typo answer before they would have loaded."""

import difflib
import gc
import os
import re
import shutil
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.core.errors import SweepError, UserError
from src.core.instantiate import user_error_in
from src.core.layout import RunFolder
from src.core.logs import report_error
from src.core.signals import INTERRUPTED, exit_status, finish_stop, take_stop
from src.run.compose import compose_config, surely_known

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def save_config(cfg: DictConfig, output_dir: str | Path) -> Path:
    """The resolved config beside the run (Hydra's .hydra/config.yaml keeps the unresolved one)."""
    from src.core.atomic_io import atomic_write

    text = OmegaConf.to_yaml(cfg, resolve=True)
    return atomic_write(RunFolder(Path(output_dir)).config, lambda f: f.write(text.encode()))


def pick_device(name: str) -> "torch.device":
    """The `device=` setting of the sampling CLIs: auto (a GPU when there is one), cpu, cuda, cuda:1, ..."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"device={name} is not a device: use device=auto, cpu or cuda") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA GPU is visible: use device=cpu or device=auto")
    return device


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def exit_with(err: UserError) -> NoReturn:
    """The one line a user sees for bad input; exit status 2 (HYDRA_FULL_ERROR=1 raises instead)."""
    if full_error():
        raise err
    report_error(f"Error: {err}")
    sys.exit(2)


class JobFailed(float):
    """What a failed job of a sweep returns instead of exiting: the sweep goes on with its other jobs, and the
    summary records FAILED with the message (src/run/sweep_summary.py). A float (NaN), so a sweeper that optimises
    the returned value (Optuna) sees a failed trial rather than an error."""

    message: str

    def __new__(cls, message: str) -> "JobFailed":
        failed = super().__new__(cls, "nan")
        failed.message = message
        return failed

    def __reduce__(self):  # keeps the message through pickling (joblib and SLURM launchers)
        return JobFailed, (self.message,)


def drop_empty_run_folder() -> None:
    """A refused command leaves no trace: Hydra made the run folder before the command was checked, and wrote
    records of the command into it (.hydra/, the log, the lock, config.yaml and the loggers' folders: a data error
    comes after they are written).
    Only what this process wrote is removed: the whole folder when this process created it and it holds nothing else,
    else the records that were not there before it took the folder (src/core/run_lock.py). A folder this process
    never took, and anything else (a resumed run's checkpoints, a user's files), is kept."""
    from src.core.run_lock import found_in, made_here

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return
    folder = Path(HydraConfig.get().runtime.output_dir)
    before = found_in(folder)
    if before is None or not folder.is_dir() or folder.resolve() == Path.cwd().resolve():
        return
    run = RunFolder(folder)
    records = {run.HYDRA_DIR, run.LOCK, run.config.name, f"{HydraConfig.get().job.name}.log", run.tensorboard.name,
               run.csv.name, run.mlruns.name, "wandb"}  # the loggers' folders are made before the data is checked
    written = {p.name for p in folder.iterdir()} - before
    if not written <= records:
        return
    if made_here(folder):
        shutil.rmtree(folder, ignore_errors=True)
        return
    for path in (folder / name for name in written):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


GRAMMAR = "https://hydra.cc/docs/1.2/advanced/override_grammar/basic"


def command_line_overrides(args: list[str]) -> list[str]:
    """The arguments that are overrides (`key=value`, `~key`), not flags such as -m or --cfg job."""
    return [a for a in args if not a.startswith("-") and ("=" in a or a.startswith("~"))]


def refuse_unreadable_overrides(args: list[str]) -> None:
    """`seed=[1,` (an override Hydra's grammar can't read) gets one line instead of Hydra's three or four."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in command_line_overrides(args):
        try:
            parser.parse_override(arg)
        except HydraException as err:
            lines = [line.strip() for line in str(err).splitlines()]
            detail = next((line for line in lines if line.strip("^") and not line.startswith(
                ("Error parsing override", "See https://"))), type(err).__name__)
            exit_with(UserError(f"{arg} is not an override Hydra can read ({detail}): see {GRAMMAR}"))


def refuse_empty_sweeps(args: list[str]) -> None:
    """`-m seed=range(0,0)` sweeps over no value: one line, before a sweep folder is made for no job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for arg in command_line_overrides(args):
        swept = OverridesParser.create().parse_override(arg)
        if swept.is_sweep_override() and (swept.is_choice_sweep() or swept.is_range_sweep()) \
                and not list(swept.sweep_string_iterator()):
            exit_with(UserError(f"{arg} sweeps over no value, so the sweep would launch no job: give it at least "
                                "one (range(0,3) is 0, 1, 2; the end is left out)"))


def refuse_unknown_hydra_options(config_name: str, args: list[str]) -> None:
    """`hydra/launcher=joblibb` gets the one line a misspelt option gets, instead of Hydra's fourteen."""
    chosen = [a for a in command_line_overrides(args) if a.startswith("hydra/") and "," not in a]
    if not chosen:
        return
    try:
        compose_config(config_name, chosen)
    except MissingConfigException as err:
        if not_an_option(err) is not None:
            exit_with(not_an_option(err))
    except Exception:  # noqa: BLE001 (Hydra says what else is wrong when it composes the config itself)
        return


def not_an_option(err: MissingConfigException) -> UserError | None:
    """The line for a group option that has no config (`model=dcgam`): the nearest option and the group's options."""
    group, _, option = (err.missing_cfg_file or "").rpartition("/")
    if not group or not err.options:
        return None
    near = difflib.get_close_matches(option, err.options, n=1)
    hint = f": did you mean {group}={near[0]}?" if near else ""
    return UserError(f"{group}={option} is not an option{hint} ({group}: {', '.join(err.options)})")


def refuse_unknown_keys(config_name: str, args: list[str]) -> None:
    """Before Hydra starts: `max_batch=20` (a key that does not exist) gets one line naming the nearest real key,
    instead of Hydra's six that end by suggesting +max_batch=20 (a key nobody reads), and `model=dcgam` one line
    naming the group's options instead of thirteen. Composes the config once more (~0.15 s) only where the files
    alone can't show every override exists; anything else Hydra finds wrong is left to its own message."""
    refuse_unreadable_overrides(args)
    multirun = any(a in ("-m", "--multirun") for a in args)
    if multirun:
        refuse_empty_sweeps(args)
    refuse_unknown_hydra_options(config_name, args)
    overrides = [a for a in args if "=" in a and not a.startswith(("-", "+", "~", "hydra.", "hydra/"))]
    if not overrides or multirun:  # a sweep's lists are not one config
        return
    if not any(a.startswith(("+", "~")) for a in args) and surely_known(config_name, overrides):
        return
    try:
        compose_config(config_name, overrides)
    except MissingConfigException as err:  # a config group option that has no file
        if not_an_option(err) is not None:
            exit_with(not_an_option(err))
    except ConfigCompositionException as err:
        found = re.match(r"Could not override '([\w.]+)'", str(err))
        if not found:
            return
        key = found.group(1)
        from src.core.checks import closest_key

        near = closest_key(compose_config(config_name, [o for o in overrides if o.split("=")[0] != key]), key)
        hint = f": did you mean {near}? ({near}=...)" if near else ": see config.yaml of a run for every setting"
        exit_with(UserError(f"{key} is not a setting{hint}"))
    except Exception:  # noqa: BLE001 (Hydra says what else is wrong when it composes the config itself)
        return


def pause_gc() -> None:
    """The first thing a CLI does: no cyclic garbage collection until run_cli starts the job (resume_gc). Importing
    torch and Lightning makes ~700,000 objects that live as long as the process and next to no cycles to free, yet
    sets off ~1,000 collections, 7 of them over everything (~0.3 s each by the end)."""
    gc.disable()


def resume_gc() -> None:
    """What start-up made is moved out of the collector's sight (gc.freeze) before it runs again: the first full
    collection would otherwise walk all of it (~0.3 s inside the first batch), and so would every later one. Once
    per process: frozen garbage is never freed, and start-up leaves little (~30,000 objects), where an earlier job
    of a sweep would leave its whole training state."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_cli(fn: Callable[[DictConfig], T], cfg: DictConfig) -> T | JobFailed:
    """Run fn; a UserError anywhere in the chain exits with one line (HYDRA_FULL_ERROR=1 shows the traceback), and
    a run a signal stopped exits with its line and 128 + the signal number once it has ended (src/core/signals.py).
    In a sweep, a job that fails prints its line (or traceback) and returns JobFailed, so the other jobs still run."""
    from src.core.checks import refuse_added_typos, require_no_missing

    resume_gc()
    try:
        require_no_missing(cfg)
        if HydraConfig.initialized():
            refuse_added_typos(cfg, list(HydraConfig.get().overrides.task))
        result = fn(cfg)
    except KeyboardInterrupt:  # Ctrl-C outside training (which stops at a batch end: src/core/signals.py)
        drop_empty_run_folder()
        report_error(INTERRUPTED)
        sys.exit(exit_status(signal.SIGINT))
    except Exception as err:
        user_error = user_error_in(err)
        if in_multirun() and not full_error() and not isinstance(user_error, SweepError):
            if user_error is None:
                traceback.print_exc()
            message = str(user_error) if user_error is not None else f"{type(err).__name__}: {err}"
            report_error(f"Error: {message}")
            return JobFailed(message.splitlines()[0] if message else type(err).__name__)
        if user_error is None or full_error():
            raise
        drop_empty_run_folder()
        exit_with(user_error)
    stop = take_stop()
    if stop is not None:
        finish_stop(stop)
    return result
