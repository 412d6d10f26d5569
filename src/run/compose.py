"""Composing the app's configs outside `@hydra.main` (tests, benchmarks, notebooks), and the options of a group."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import src  # noqa: F401  (registers the config resolvers)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(config_name: str, overrides: list[str] | tuple[str, ...] = (), output_dir: Path | None = None,
                   ) -> DictConfig:
    """The config `python -m src.<config_name> <overrides>` would run with; paths.output_dir set to output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} interpolations resolve as in a real run
    with open_dict(cfg):
        del cfg.hydra
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
    return cfg


def group_options(group: str) -> list[str]:
    """The names a config group offers on the command line: every conf/<group>/*.yaml (what its configs share lives in
    conf/shared/, which is no option)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
