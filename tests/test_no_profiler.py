"""Without a configured profiler the Trainer gets NoProfiler (src/core/no_profiler.py); one set on the command line
is Lightning's as before."""

import lightning as L
from lightning.pytorch.profilers import SimpleProfiler
from omegaconf import open_dict

from src.core.no_profiler import NoProfiler
from src.train import train


class KeepProfiler(L.Callback):
    seen = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        KeepProfiler.seen = trainer.profiler


def profiler_of(train_cfg, *overrides: str):
    cfg = train_cfg("model=mlp_gan", *overrides)
    with open_dict(cfg):
        cfg.callbacks.keep = {"_target_": "tests.test_no_profiler.KeepProfiler"}
    train(cfg)
    return KeepProfiler.seen


def test_the_default_run_makes_no_context_per_hook_call(train_cfg) -> None:
    profiler = profiler_of(train_cfg)
    assert isinstance(profiler, NoProfiler)
    assert profiler.profile("a") is profiler.profile("b")  # one shared empty context, not one per call
    with profiler.profile("[Callback]x.on_train_batch_end"):
        pass


def test_a_configured_profiler_is_used(train_cfg) -> None:
    assert isinstance(profiler_of(train_cfg, "+trainer.profiler=simple"), SimpleProfiler)
