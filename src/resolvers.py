"""Every OmegaConf resolver the configs use (`${batch_limit:...}`, `${run_path:...}`, ...), registered by
`register()`.

It imports nothing heavy: `--help`, `--cfg job` and a refused typo compose the config without torch or Lightning.
A resolver whose work needs them imports its module when it is called."""

from omegaconf import OmegaConf

from src.core.layout import run_name_suffix, run_path
from src.core.sweeps import job_overrides
from src.run.resume import hydra_subdir, run_dir


def batch_limit(batches: int | None) -> int:
    """max_batches as Lightning's max_steps (its counter counts batches, src/core/loop.py); -1: no limit."""
    return -1 if batches is None or int(batches) < 0 else int(batches)


def epoch_limit(batches: int | None, epochs: int) -> int:
    """max_batches, when set, is the whole budget: Lightning's epoch limit is lifted (-1) so it can't cut it short."""
    return -1 if batches is not None else int(epochs)


def minutes_to_max_time(minutes: float | None) -> str | None:
    """max_minutes as Lightning's max_time ("DD:HH:MM:SS", whole seconds); None: no wall-clock limit."""
    if minutes is None:
        return None
    minutes_total, seconds = divmod(max(1, round(float(minutes) * 60)), 60)
    hours, minutes_left = divmod(minutes_total, 60)
    return f"{hours // 24}:{hours % 24:02d}:{minutes_left:02d}:{seconds:02d}"


def generator_input(z_dim: int, conditional: bool, class_embedding_dim: int) -> int:
    """What a model's generator takes: z, plus the class embedding joined to it when conditional."""
    return int(z_dim) + (int(class_embedding_dim) if conditional else 0)


def folder_classes(path: str) -> int:
    """data=folder's data.num_classes (src/data/folder.py count_classes)."""
    from src.data.folder import count_classes

    return count_classes(path)


def folder_channels(keep_alpha: bool) -> int:
    """data=folder's data.channels: RGB, or RGBA when it keeps the alpha channel."""
    return 4 if keep_alpha is True else 3  # anything else: the DataModule refuses it in its own words


def folder_store(data_dir: str, path: str) -> str:
    """data=folder's data.store_dir (src/data/folder.py store_dir)."""
    from src.data.folder import store_dir

    return store_dir(data_dir, path)


RESOLVERS = {
    "batch_limit": batch_limit,
    "epoch_limit": epoch_limit,
    "minutes_to_max_time": minutes_to_max_time,
    "generator_input": generator_input,
    "folder_classes": folder_classes,
    "folder_channels": folder_channels,
    "folder_store": folder_store,
    "run_path": run_path,
    "run_name_suffix": run_name_suffix,
    "job_overrides": job_overrides,
    "run_dir": run_dir,
    "hydra_subdir": hydra_subdir,
}


def register() -> None:
    """Make every resolver known to OmegaConf (again: a no-op when it is)."""
    for name, resolver in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)
