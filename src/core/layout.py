"""The layout of a run folder (outputs/<date>/<time>/, or a sweep job's folder): the one place that names its files.

Code asks a `RunFolder` for a path; configs use the resolver `${run_path:<run folder>,<name>}`, e.g.
`${run_path:${paths.output_dir},checkpoints}`."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MAX_NAME = 120  # characters of a run's name in its folder name (255 is the file system's limit)


@dataclass(frozen=True)
class RunFolder:
    root: Path

    HYDRA_DIR = ".hydra"  # Hydra's records of the run (a resumed run adds .hydra/resume_<time>/)
    CHECKPOINTS = "checkpoints"
    LOCK = ".lock"  # held by the process training in the folder (src/core/run_lock.py)
    LAST_CHECKPOINT = "last.ckpt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        """The resolved config of the run (Hydra's own records are in .hydra/)."""
        return self.root / "config.yaml"

    @property
    def hydra_dir(self) -> Path:
        return self.root / self.HYDRA_DIR

    @property
    def overrides(self) -> Path:
        """The command-line overrides the run was started with (Hydra writes them)."""
        return self.hydra_dir / "overrides.yaml"

    @property
    def lock(self) -> Path:
        return self.root / self.LOCK

    @property
    def checkpoints(self) -> Path:
        return self.root / self.CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / self.LAST_CHECKPOINT

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def gif(self) -> Path:
        return self.root / "training_progress.gif"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def csv(self) -> Path:
        """logger=csv's metrics.csv and hparams.yaml."""
        return self.root / "csv"

    @property
    def mlruns(self) -> Path:
        """logger=mlflow's local file store (logger=wandb's runs go to wandb/, which wandb names itself)."""
        return self.root / "mlruns"

    @property
    def generator(self) -> Path:
        """The generator the run samples with (the EMA copy of G unless the run turned it off)."""
        return self.root / "generator.pt"

    @property
    def generator_raw(self) -> Path:
        """The trained G itself, written only when generator.pt holds its EMA."""
        return self.root / "generator_raw.pt"

    @property
    def discriminator(self) -> Path:
        return self.root / "discriminator.pt"

    def is_run(self) -> bool:
        return self.config.is_file()

    @classmethod
    def of_checkpoint(cls, path: str | Path) -> "RunFolder | None":
        """The run a <run>/checkpoints/<file>.ckpt belongs to; None for a file outside a run folder."""
        path = Path(path)
        if path.parent.name != cls.CHECKPOINTS:
            return None
        run = cls(path.parent.parent)
        return run if run.is_run() else None

    @classmethod
    def of_file(cls, path: str | Path) -> "RunFolder":
        """The run folder a checkpoint (in checkpoints/) or a weight file (at the top) sits in."""
        path = Path(path)
        return cls.of_checkpoint(path) or cls(path.parent)


def run_name_suffix(name: str | None, job_overrides: str = "") -> str:
    """Resolver: what follows the time (a run) or the job number (a sweep job) in a run folder's name: `_<name>`
    (name=...), else a sweep job's own overrides, so runs can be told apart in folder lists and TensorBoard. Characters
    a folder name should not hold become '-'; a long name is cut and ends in a hash of all of it, which keeps jobs
    apart (their full overrides are in .hydra/overrides.yaml and the sweep's summary.md)."""
    text = str(name) if name not in (None, "") else job_overrides
    text = re.sub(r"[^\w.,=+-]+", "-", text).strip("-")
    if len(text) > MAX_NAME:
        text = f"{text[:MAX_NAME - 9]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return f"_{text}" if text else ""


def run_path(root: str, name: str) -> str:
    """Resolver: ${run_path:<run folder>,<RunFolder property>}."""
    return str(getattr(RunFolder(Path(root)), name))
