"""Composing the app's configs outside `@hydra.main` (tests, benchmarks, notebooks), the options of a group, and the
keys the config files show without composing (FileKeys: the typo check before Hydra starts, src/run/cli.py)."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
FAST_YAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML was built with it


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


def read_config(path: Path) -> dict | None:
    """A config file as plain data; None where it is missing or is not a mapping."""
    if not path.is_file():
        return None
    content = yaml.load(path.read_text(), Loader=FAST_YAML)
    return {} if content is None else content if isinstance(content, dict) else None


def merge(into: dict, other: dict) -> None:
    """Hydra's merge, as far as which keys exist: a mapping merges into a mapping, anything else replaces it."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def option_content(path: Path) -> dict | None:
    """What a group option defines, with the options its defaults list pulls in (`- default`,
    `- /shared/model@_here_`), merged in their order; None where anything goes elsewhere (another package)."""
    content = read_config(path)
    if content is None or "@package" in path.read_text():
        return None
    defaults = content.pop("defaults", [])
    merged: dict = {}
    for entry in defaults if "_self_" in defaults else [*defaults, "_self_"]:
        name, _, package = entry.partition("@") if isinstance(entry, str) else ("", "", "")
        if entry == "_self_":
            pulled = content
        elif name.startswith("/") and package == "_here_":
            pulled = option_content(CONF_DIR / f"{name[1:]}.yaml")
        elif name and not name.startswith("/") and not package:
            pulled = option_content(path.parent / f"{name}.yaml")
        else:
            return None
        if pulled is None:
            return None
        merge(merged, pulled)
    return merged


@dataclass
class FileKeys:
    """The keys a config's files show for one choice of group options, read without composing (~5 ms against ~0.15
    s): the primary config's, and each chosen option's under its group."""

    tree: dict
    choices: dict
    reshaped: set[str]  # top-level keys an option of `# @package _global_` sets: what was under them may be gone

    @classmethod
    def read(cls, config_name: str, picked: dict[str, str]) -> "FileKeys | None":
        """None when the files can't tell: an option that picks other options (an experiment), a missing option."""
        tree = read_config(CONF_DIR / f"{config_name}.yaml")
        if tree is None:
            return None
        choices = {group: option for entry in tree.pop("defaults", []) if isinstance(entry, dict)
                   for group, option in entry.items() if (CONF_DIR / group).is_dir()}
        choices.update(picked)
        reshaped = set()
        for group, option in choices.items():
            path = CONF_DIR / group / f"{option}.yaml"
            if option is not None and path.is_file() and "@package _global_" in path.read_text():
                content = read_config(path)
                if content is None or "defaults" in content:
                    return None
                reshaped.update(content)
            elif option is not None:
                content = option_content(path)
                if content is None or not isinstance(tree.setdefault(group, {}), dict):
                    return None
                merge(tree[group], content)
        return cls(tree, choices, reshaped)

    def defines(self, key: str) -> bool:
        parts = key.split(".")
        if len(parts) > 1 and parts[0] in self.reshaped:
            return False
        node = self.tree
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True


def surely_known(config_name: str, overrides: list[str]) -> bool:
    """Whether every `key=value` and `group=option` in overrides names a key or an option that exists, as far as the
    files show (FileKeys); False when unsure."""
    settings = dict(o.split("=", 1) for o in overrides)
    keys = FileKeys.read(config_name, {k: v for k, v in settings.items() if (CONF_DIR / k).is_dir()})
    return keys is not None and all(key in keys.choices or keys.defines(key) for key in settings)
