"""GAN research template: Lightning + Hydra. Importing the package registers the config resolvers."""

from omegaconf import OmegaConf


def batches_to_steps(batches: int | None, n_critic: int) -> int:
    """Lightning's global_step counts every optimizer step: n_critic D steps + 1 G step per batch."""
    if batches is None or int(batches) < 0:
        return -1
    return int(batches) * (int(n_critic) + 1)


OmegaConf.register_new_resolver("batches_to_steps", batches_to_steps, replace=True)

import src.run.layout  # noqa: E402, F401  (registers ${run_path:...})
