"""Lines a run prints that must be true of what it leaves (#37 item 7)."""

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_a_run_refused_while_it_sets_up_names_no_config_file_it_then_removes(tmp_path: Path) -> None:
    images = tmp_path / "images" / "a"
    images.mkdir(parents=True)
    for i in range(4):
        (images / f"{i}.png").write_text("not an image")
    run = tmp_path / "run"
    refused = run_cli("src.train", "model=mlp_gan", "data=folder", f"data.path={images.parent}", "~logger",
                      f"paths.data_dir={tmp_path / 'data'}", "data.num_workers=0", "max_batches=1",
                      f"hydra.run.dir={run}")
    assert refused.returncode == 2 and "can be read by PIL" in refused.stderr, refused.stderr[-2000:]
    assert not run.exists() and "every setting" not in refused.stdout, refused.stdout
