"""Continuing a run: which folder it writes to, which checkpoint it starts from, and which config it uses.

`resume=<run folder>` (or `ckpt_path=<run>/checkpoints/<file>.ckpt`) continues that run in its own folder:
- hydra.run.dir resolves to the run folder (resolver `run_dir`), so logs, checkpoints and TensorBoard stay in
  one place; Hydra's record of this invocation goes to .hydra/resume_<time>/ (resolver `hydra_subdir`), so the
  original .hydra/overrides.yaml is kept;
- the config is composed again from the run's original overrides, those of its earlier resumes, then the ones
  given now, so
  `resume=<run>` alone continues with the same model, data and seed, and `resume=<run> max_batches=5000`
  extends it; where a default of the objective, model or data changed since the run was made (e.g. the EMA turned
  off by default), the value the run recorded in its config.yaml is kept, unless given now;
- with `resume=`, the newest checkpoint that loads is used: truncated or unreadable files are skipped;
- a SLURM job that was requeued (SLURM_RESTART_COUNT > 0, e.g. after a stop by SLURM's time-limit warning, see
  src/core/signals.py) continues from the newest readable checkpoint in its own run folder, as if resume= named it.
"""

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from src.core.commands import override_key
from src.core.errors import UserError
from src.core.layout import RunFolder
from src.run.choices import Choices

log = logging.getLogger(__name__)

RESUMABLE_HINT = "pass a run folder (outputs/<date>/<time>) or one of its checkpoints/*.ckpt"


def resumed_run(resume: str | None, ckpt_path: str | None) -> Path | None:
    """The run folder this invocation continues, or None for a new run (in a new folder)."""
    if resume and Path(resume).is_dir():
        return Path(resume)
    checkpoint = resume if resume and Path(resume).is_file() else None if resume else ckpt_path
    run = RunFolder.of_checkpoint(checkpoint) if checkpoint else None
    return run.root if run is not None else None


def run_dir(resume: str | None, ckpt_path: str | None, new_dir: str) -> str:
    """Resolver for hydra.run.dir (src/resolvers.py; src.run.launch_checks.OutputFolderCheck checks it can be written
    before Hydra creates it)."""
    return str(resumed_run(resume, ckpt_path) or Path(new_dir))


def hydra_subdir(resume: str | None, ckpt_path: str | None, now: str) -> str | None:
    """Resolver for hydra.output_subdir (src/resolvers.py): a resumed run keeps the original .hydra/ files. A sweep
    job: none, so Hydra writes nothing before the job owns its folder; src.run.launch_checks writes the same records
    once it does."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return None
    hydra_dir = RunFolder.HYDRA_DIR
    return hydra_dir if resumed_run(resume, ckpt_path) is None else f"{hydra_dir}/resume_{now}"


def require_resumable(run: Path) -> None:
    """resume=<folder> names a run that saved a checkpoint: checked before anything is written in the folder."""
    if not any(RunFolder(run).checkpoints.glob("*.ckpt")):
        why = "no .ckpt files" if RunFolder(run).checkpoints.is_dir() else "no checkpoints/ folder"
        raise UserError(f"resume={run} holds no checkpoint to continue from ({why} in {RunFolder(run).checkpoints}): "
                        "nothing was written there; start a new run, or pass ckpt_path=<file> if you have one "
                        "elsewhere")


@contextmanager
def only_a_session_that_saved_is_recorded(cfg: DictConfig) -> Iterator[None]:
    """A resumed session changes what later resumes read (its .hydra/resume_<time>/ record, config.yaml) only if it
    saved a checkpoint: a refused command, one with nothing to do, and one that failed or diverged before its first
    save leave the run as they found it, so a plain resume= afterwards continues as before. (train.log keeps their
    lines: what was tried.)"""
    run = resumed_run(cfg.get("resume"), cfg.get("ckpt_path")) if HydraConfig.initialized() else None
    if run is None or HydraConfig.get().output_subdir is None:  # DDP's other processes write no records
        yield
        return
    folder = RunFolder(run)
    record = run / HydraConfig.get().output_subdir
    config = folder.config.read_bytes() if folder.config.is_file() else None
    started = max((p.stat().st_mtime_ns for p in folder.checkpoints.glob("*.ckpt")), default=0)
    try:
        yield
    finally:
        if not any(p.stat().st_mtime_ns > started for p in folder.checkpoints.glob("*.ckpt")):
            shutil.rmtree(record, ignore_errors=True)
            if config is not None and folder.config.read_bytes() != config:
                from src.core.atomic_io import atomic_write

                atomic_write(folder.config, lambda f: f.write(config))


def continue_run_config(cfg: DictConfig) -> tuple[DictConfig, Choices | None]:
    """Inside @hydra.main: compose again from the resumed run's overrides, then the ones given now; with what made
    that config (None: a new run, Hydra's own record says it)."""
    run = resumed_run(cfg.get("resume"), cfg.get("ckpt_path"))
    recorded = RunFolder(run).overrides if run is not None else None
    if recorded is None or not recorded.is_file():
        return cfg, None
    now = list(HydraConfig.get().overrides.task)
    # the run's first command line, then each earlier resume's (.hydra/resume_<time>/, in time order): the latest
    # value of a key wins, and what is given now wins over all of them
    earlier = [recorded, *sorted(recorded.parent.glob("resume_*/overrides.yaml"))]
    before: dict[str, str] = {}
    for overrides in earlier:
        for o in read_record(overrides, "command line"):
            if override_key(o) not in {"resume", "ckpt_path"} and not o.startswith("hydra."):
                before.pop(override_key(o), None)
                before[override_key(o)] = o
    given = {override_key(o) for o in now}
    kept = [o for key, o in before.items() if key not in given]
    composed = hydra.compose(config_name=HydraConfig.get().job.config_name, overrides=[*kept, *now],
                             return_hydra_config=True)
    choices = Choices.of(composed.hydra, [*kept, *now])
    with open_dict(composed):
        del composed["hydra"]  # Hydra's own settings: the run's config never holds them
    saved = RunFolder(run).config
    if saved.is_file():
        recorded_cfg = read_record(saved, "settings")
        refuse_unresumable_changes(composed, recorded_cfg, run)
        keep_recorded_settings(composed, recorded_cfg, {override_key(o) for o in now})
    return composed, choices


def read_record(path: Path, what: str) -> ListConfig | DictConfig:
    """One of a run's records: its command line (a list of overrides, .hydra/) or its settings (config.yaml); one
    line naming the file when it is damaged."""
    try:
        record = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 (YAML's and OmegaConf's many errors: any is a damaged file)
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
    else:
        if what == "settings" and isinstance(record, DictConfig):
            return record
        if what != "settings" and isinstance(record, ListConfig) and all(isinstance(o, str) for o in record):
            return record
        why = "a list of overrides expected" if what != "settings" else "a mapping of settings expected"
    raise UserError(f"{path}, this run's record of its {what}, is damaged ({why}): restore it from a copy or "
                    "repair it, then resume again (or start a new run)")


# Settings a run cannot change when it continues (shapes and n_critic are checked against the checkpoint itself,
# src/run/checkpoints.py require_fits), with why.
UNRESUMABLE = {
    "seed": "the random streams continue from the checkpoint",
    "data._target_": "the data order continues mid-epoch from the checkpoint",
    "data.path": "the data order continues mid-epoch from the checkpoint",
    "data.batch_size": "the data order continues mid-epoch from the checkpoint",
    "data.channels": "the networks were built for it",
    "model.image_size": "the networks were built for it",
    "model.conditional": "the networks were built for it",
    "model.num_classes": "the networks were built for it",
}


def refuse_unresumable_changes(cfg: DictConfig, recorded: DictConfig, run: Path) -> None:
    for key, why in UNRESUMABLE.items():
        then, now = OmegaConf.select(recorded, key, default=None), OmegaConf.select(cfg, key, default=None)
        if then is not None and now is not None and then != now:
            raise UserError(f"{key} can't change when a run continues ({why}): the run has {key}={then}, this "
                            f"command {key}={now}; drop the override, or start a new run (without resume=) to "
                            f"train with it")


# The parts of a run's config that define what it trains; the rest (trainer, callbacks, logger, paths) is how it
# runs, and takes today's defaults.
RECORDED_SETTINGS = ("model", "loss", "regularizer", "augment", "optimizer", "scheduler", "data")


def leaves(node: object, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every leaf of a plain container (a list counts as one leaf)."""
    if not isinstance(node, dict):
        return {prefix: node}
    return {k: v for key, child in node.items() for k, v in leaves(child, f"{prefix}{key}.").items()} if node else {}


def keep_recorded_settings(cfg: DictConfig, recorded: DictConfig, given_now: set[str]) -> None:
    """Where today's composition differs from the run's recorded config.yaml in a setting nobody gave now, that is
    not derived from another one (an interpolation) and is not a class path, put the recorded value back, and say so
    in one line."""
    today = {k.removesuffix("."): v for k, v in leaves(OmegaConf.to_container(cfg, resolve=False)).items()}
    then = {k.removesuffix("."): v for k, v in leaves(OmegaConf.to_container(recorded, resolve=False)).items()}
    kept = []
    for key, value in then.items():
        if key.split(".")[0] not in RECORDED_SETTINGS or key not in today or today[key] == value:
            continue
        if any(key == g or key.startswith(g + ".") for g in given_now):
            continue
        if isinstance(today[key], str) and "${" in today[key] or key.rsplit(".", 1)[-1].startswith("_"):
            continue  # derived from another setting, or which class implements it (_target_: code, not a setting)
        OmegaConf.update(cfg, key, value, merge=False)
        kept.append(f"{key}={value}")
    if kept:
        log.info(f"[resume] keeping what this run was trained with where today's defaults differ: {', '.join(kept)}")


def checkpoint_to_resume(cfg: DictConfig) -> tuple[str, dict[str, Any]] | None:
    """(file, its contents) to continue from (None: new run); one clear line when there is none to use."""
    from src.core.checkpoint_files import newest_checkpoint, read_checkpoint  # torch: not needed to compose a config

    resume, ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    if resume and ckpt_path:
        raise UserError(f"resume={resume} and ckpt_path={ckpt_path} are both set: keep one of them")
    if ckpt_path:
        return str(ckpt_path), read_checkpoint(Path(ckpt_path), "ckpt_path")
    if not resume:
        return requeued_job_checkpoint(cfg)
    path = Path(resume)
    if path.is_file():
        return str(path), read_checkpoint(path, "resume")
    if not path.is_dir():
        raise UserError(f"resume={resume} does not exist: {RESUMABLE_HINT}")
    checkpoints, skipped = RunFolder(path).checkpoints, []
    found = newest_checkpoint(checkpoints, skipped)
    if found is None:
        why = (f"unreadable: {', '.join(skipped)}" if skipped else
               "no .ckpt files" if checkpoints.is_dir() else "no checkpoints/ folder")
        raise UserError(f"resume={resume} holds no readable checkpoint in {checkpoints} ({why}): "
                        "start a new run, or pass ckpt_path=<file> if you have one elsewhere")
    if skipped:
        log.info(f"[resume] skipped unreadable {', '.join(skipped)}: continuing from {found[0].name} "
                 f"(batch {found[1]})")
    return str(found[0]), read_checkpoint(found[0], "resume")


def slurm_restarts() -> int:
    """How many times SLURM requeued this job (0: its first run, or no SLURM)."""
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    return int(restarts) if restarts.isdigit() else 0


def requeued_job_checkpoint(cfg: DictConfig) -> tuple[str, dict[str, Any]] | None:
    """A requeued SLURM job runs its command again, into the same run folder: continue from its newest checkpoint."""
    from src.core.checkpoint_files import newest_checkpoint, read_checkpoint

    if not (restarts := slurm_restarts()):
        return None
    found = newest_checkpoint(RunFolder(cfg.paths.output_dir).checkpoints)
    if found is None:
        return None
    log.info(f"[resume] SLURM requeued this job (restart {restarts}): continuing from {found[0]}")
    return str(found[0]), read_checkpoint(found[0], "resume")
