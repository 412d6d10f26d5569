"""TensorBoard's HPARAMS table names each config group's option (augment=diffaugment), not the class path it sets,
which the table cuts short; a resumed run keeps its first command's options (#37 item 7)."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from src.data.synthetic import write_mnist
from tests.conftest import run_cli
from tests.test_loggers import TINY


def session_settings(run: Path) -> list[dict[str, str]]:
    """The settings of each session's HPARAMS row in the run's event files, oldest first."""
    rows = []
    for events_file in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
        events = EventAccumulator(str(events_file)).Reload()
        content = events.PluginTagToContent(metadata.PLUGIN_NAME)
        if metadata.SESSION_START_INFO_TAG in content:
            started = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
            rows.append({name: value.string_value for name, value in started.hparams.items()})
    return rows


@pytest.mark.slow
def test_hparams_name_the_options_picked_and_a_resume_keeps_them(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data")
    run, data = tmp_path / "run", f"paths.data_dir={tmp_path / 'data'}"
    done = run_cli("src.train", *TINY, data, "augment=diffaugment", "loss._target_=src.gan.losses.Hinge",
                   f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = run_cli("src.train", f"resume={run}", "max_batches=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    first, second = session_settings(run)
    for settings in (first, second):
        assert settings["augment"] == "diffaugment" and settings["model"] == "mlp_gan" and settings["data"] == "mnist"
        assert "augment._target_" not in settings and "model._target_" not in settings
        assert settings["loss._target_"] == "src.gan.losses.Hinge"  # set on the command line: kept beside loss=bce
        assert not {"logger", "callbacks", "paths"} & set(settings)
