"""Train a GAN: `python -m src.train model=dcgan data=mnist` (see conf/train.yaml for every group).
Continue a run: `python -m src.train resume=outputs/<date>/<time>` (see src/run/resume.py)."""


import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.core.host_memory import keep_freed_memory
from src.core.instantiate import instantiate
from src.core.logs import quiet_known_warnings
from src.run.choices import Choices
from src.run.cli import JobFailed, pause_gc, refuse_unknown_keys, run_cli, save_config
from src.run.resume import checkpoint_to_resume, continue_run_config, only_a_session_that_saved_is_recorded

quiet_known_warnings()


def train(cfg: DictConfig, choices: Choices | None = None) -> dict[str, float]:
    # Imported here, not above: `--help`, `--cfg job` and a refused typo never load torch or Lightning.
    import lightning as L

    from src.callbacks.loggers import HyperparameterTable, LogScalars, instantiate_loggers
    from src.core.atomic_io import remove_leftover_temps
    from src.core.checks import validate_train_config
    from src.core.device_settings import apply_device_settings
    from src.core.loop import batches_in
    from src.core.no_profiler import NoProfiler
    from src.core.run_lock import is_first_process
    from src.core.signals import last_files_first
    from src.gan.contract import require_gan_module
    from src.run.budget import budget_spent, report_short_budget
    from src.run.checkpoints import require_fits
    from src.run.launch_checks import check_multirun_ddp
    from src.run.summary import FirstBatchClock, SettingsLine, log_choices, log_summary

    check_multirun_ddp(cfg)
    validate_train_config(cfg)
    if cfg.keep_freed_memory:
        keep_freed_memory()
    if is_first_process():  # the folder's owner: a temp file there is one a killed process left
        remove_leftover_temps(Path(cfg.paths.output_dir))
    resumed = checkpoint_to_resume(cfg)
    L.seed_everything(cfg.seed, workers=True)

    model = instantiate(cfg.model)
    if cfg.get("callbacks"):
        require_gan_module(model)
    ckpt_path = resumed_at = None
    if resumed is not None:
        ckpt_path, checkpoint = resumed
        resumed_at = batches_in(checkpoint)
        require_fits(checkpoint, model, ckpt_path, "resume" if cfg.resume else "ckpt_path")
        if budget_spent(checkpoint, cfg):  # nothing to train: leave every file of the run as it is
            return {}
    datamodule = instantiate(cfg.data)
    callbacks = [LogScalars(), *(instantiate(c) for c in cfg.get("callbacks", {}).values())]  # logs first
    callbacks += [FirstBatchClock(), SettingsLine(cfg.paths.output_dir)]
    loggers = instantiate_loggers(cfg.get("logger"), resumed_at)
    choices = choices or Choices.current()
    if loggers:
        callbacks.append(HyperparameterTable(cfg, choices))
    quiet = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **quiet)
    apply_device_settings(trainer, cfg.float32_matmul_precision)
    log_choices(choices)
    save_config(cfg, cfg.paths.output_dir)

    start = time.perf_counter()
    with last_files_first():
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    report_short_budget(trainer, model, cfg)
    log_summary(trainer, model.batches_done, time.perf_counter() - start, cfg)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def resumable_train(cfg: DictConfig) -> dict[str, float]:
    from src.run.launch_checks import release_job_folder, require_own_run_folder

    try:
        require_own_run_folder()
        with only_a_session_that_saved_is_recorded(cfg):
            return train(*continue_run_config(cfg))
    finally:
        release_job_folder()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | dict[str, float] | None:
    metrics = run_cli(resumable_train, cfg)
    if isinstance(metrics, JobFailed):  # a failed job of a sweep: the summary records it, the others run
        return metrics
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else metrics  # one number (None if never logged) for a Hydra sweeper


if __name__ == "__main__":
    pause_gc()
    refuse_unknown_keys("train", sys.argv[1:])
    main()
