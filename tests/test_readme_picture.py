"""README's picture and caption come from `make train`'s default run at the commit that shows them (#37 item 1):
`make readme-picture` remakes both and records the default run's trajectory (benchmarks/readme_picture.py); a commit
that changes that trajectory fails here until they are remade."""

import json
from pathlib import Path

import pytest

from benchmarks.readme_picture import (
    CAPTION_END,
    CAPTION_START,
    README,
    RECORD,
    caption,
    fingerprint,
    fingerprint_differences,
)


def test_the_default_run_follows_the_trajectory_readmes_picture_was_made_with(tmp_path: Path) -> None:
    record = json.loads(RECORD.read_text())
    changed = fingerprint_differences(record["fingerprint"], fingerprint(tmp_path))
    assert not changed, (
        f"the default run's trajectory changed since {RECORD.name} was written at {record['fingerprint_commit']} "
        f"({len(changed)} weight tensors after a few batches, first {changed[0]}): run make readme-picture and commit "
        "docs/default_run_samples.png, docs/default_run.json and README's caption with this change")


@pytest.mark.slow
def test_the_fingerprint_notices_a_changed_seed_or_learning_rate(tmp_path: Path) -> None:
    base = fingerprint(tmp_path / "base")
    for i, override in enumerate(["seed=43", "model.lr_g=3e-4"]):
        assert fingerprint_differences(base, fingerprint(tmp_path / str(i), override)), override


def test_readmes_caption_is_the_one_written_from_the_record() -> None:
    record, readme = json.loads(RECORD.read_text()), README.read_text()
    assert readme.count(CAPTION_START) == readme.count(CAPTION_END) == 1
    shown = readme[readme.index(CAPTION_START) + len(CAPTION_START):readme.index(CAPTION_END)].strip()
    if "metrics" in record:  # written by make readme-picture: every number of the caption comes from the record
        assert shown == caption(record), "README's caption was edited by hand: run make readme-picture"
    else:  # only the fingerprint recorded so far: the caption says it is older than the default run
        assert "predate the current default run" in shown and "`make readme-picture` remakes both" in shown
