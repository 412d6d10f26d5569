"""The Optuna sweeper runs real trials and minimises the metric that src.train returns."""

from pathlib import Path

import pytest
import yaml

from src.run.compose import compose_config
from src.train_classifier import train_classifier
from tests.conftest import run_cli
from tests.test_metrics_pipeline import SMALL, write_class_patterns

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the sweeps extra is not installed")


def test_optuna_runs_two_trials_on_the_returned_domain_fid(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_class_patterns(data_dir)
    train_classifier(compose_config("train_classifier", [
        "model=mlp_gan", f"paths.data_dir={data_dir}", "data.num_workers=0", "classifier.width=4", "epochs=2",
        "batch_size=30"]))
    sweep = tmp_path / "sweep"
    result = run_cli(
        "src.train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2", "model=mlp_gan", "model.generator.width=8", "max_batches=2",
        "metrics.every_n_batches=2", *SMALL, "data.batch_size=8", "data.num_workers=0", "~logger",
        "trainer.enable_progress_bar=false", "~callbacks.progress_bar", f"paths.data_dir={data_dir}",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"model.lr_g", "model.lr_d", "model.n_critic"}
    assert best["best_value"] > 0  # an FID between generated and real features
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
