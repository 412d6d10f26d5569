"""GAN research template: Lightning + Hydra. Importing the package registers the config resolvers."""

from omegaconf import OmegaConf


def batches_to_steps(batches: int | None, n_critic: int) -> int:
    """Lightning's global_step counts every optimizer step: n_critic D steps + 1 G step per batch."""
    if batches is None or int(batches) < 0:
        return -1
    return int(batches) * (int(n_critic) + 1)


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


OmegaConf.register_new_resolver("generator_input", generator_input, replace=True)
OmegaConf.register_new_resolver("batches_to_steps", batches_to_steps, replace=True)
OmegaConf.register_new_resolver("epoch_limit", epoch_limit, replace=True)
OmegaConf.register_new_resolver("minutes_to_max_time", minutes_to_max_time, replace=True)

import src.data.folder  # noqa: E402, F401  (registers ${folder_classes:...})
import src.run.layout  # noqa: E402, F401  (registers ${run_path:...})
