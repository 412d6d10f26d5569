"""What made a run's config, as its first lines say it (src/run/summary.py)."""

from dataclasses import dataclass

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.core.commands import override_key


@dataclass(frozen=True)
class Choices:
    """What made a run's config: the config groups picked (in the defaults' order) and the other overrides."""

    groups: dict[str, str]
    overrides: list[str]

    @classmethod
    def of(cls, hydra_cfg: DictConfig, overrides: list[str]) -> "Choices":
        groups = {group: choice for group, choice in reversed(hydra_cfg.runtime.choices.items())
                  if not group.startswith("hydra") and choice is not None}
        return cls(groups, [o for o in overrides if override_key(o) not in groups])

    @classmethod
    def current(cls) -> "Choices | None":
        """This command's choices (None outside Hydra); a resumed run's come from continue_run_config instead."""
        if not HydraConfig.initialized():
            return None
        return cls.of(HydraConfig.get(), list(HydraConfig.get().overrides.task))
