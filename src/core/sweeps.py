"""What a multirun varies, read the same way by a job's folder name, its row in TensorBoard's HPARAMS table and the
sweep's summary.md: the swept keys come first in each.

A key is swept when the command line gives it with sweep syntax (`a,b`, `range()`, `choice()`, `glob()`), which
Hydra's basic sweeper writes to <sweep>/multirun.yaml before any job starts, or when the sweeper searches it
(`hydra.sweeper.params`: Optuna's search space, or sweeps a config file declares)."""

import multiprocessing
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.core.commands import override_key


def in_sweep_job() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def swept_keys(hydra_cfg: DictConfig) -> list[str]:
    """The keys a sweep varies, in the order they were given; [] outside a sweep."""
    keys: list[str] = []
    recorded = Path(str(hydra_cfg.sweep.dir)) / "multirun.yaml"
    if recorded.is_file():
        task = OmegaConf.select(OmegaConf.load(recorded), "hydra.overrides.task", default=None) or []
        keys += [o.key_or_group for o in OverridesParser.create().parse_overrides(list(task)) if o.is_sweep_override()]
    params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None) or {}
    return list(dict.fromkeys([*keys, *(str(k) for k in params)]))


def swept_first(keys: list[str], swept: list[str]) -> list[str]:
    """`keys` with the swept ones first, in the sweep's order; the others keep their order."""
    rank = {key: i for i, key in enumerate(swept)}
    return sorted(keys, key=lambda k: (0, rank[override_key(k)]) if override_key(k) in rank else (1, 0))


def job_overrides() -> str:
    """Resolver `${job_overrides:}` (a sweep job's folder name): its overrides as Hydra's override_dirname joins them
    (where data and outputs live left out), the swept keys first, then the others sorted."""
    hydra_cfg = HydraConfig.get()
    naming = hydra_cfg.job.config.override_dirname
    excluded = set(naming.exclude_keys)
    given = sorted(o for o in hydra_cfg.overrides.task if override_key(o) not in excluded)
    return naming.item_sep.join(swept_first(given, swept_keys(hydra_cfg)))


class JobClock(Callback):
    """When the sweep job this process runs started: a sweep runs several jobs in one process (the basic launcher all
    of them, joblib's one worker after another), so the process's start is only its first job's."""

    started: float | None = None  # time.perf_counter() at the start of this process's current sweep job

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        JobClock.started = time.perf_counter() if in_sweep_job() else None


class StandardStartMethod(Callback):
    """A sweep job that joblib's launcher runs in one of its worker processes starts its own processes (DataLoader
    workers) the platform's standard way. loky makes itself the worker's default start method, and a plain
    multiprocessing.Process started through it fails (`'Process' object has no attribute 'env'`): every job that
    computes the real statistics with data.num_workers > 0 failed."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if (multiprocessing.get_start_method(allow_none=True) or "").startswith("loky"):
            multiprocessing.set_start_method(None, force=True)
