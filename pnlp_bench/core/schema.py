"""The defaults of every config node, owned by its dataclass and handed to Hydra as config nodes.

Each typed config (a trainer, a data set, a projection, ...) says its defaults once, in its dataclass. The
YAML option of a group names that node first in its defaults list (`- /schema_trainer_mixer@_here_`) and
states only what differs, so a default changed in code is the default of every config that does not say
otherwise, and `bench run --cfg job` still shows every key. The families list their nodes
(`pnlp_bench/mixer/schemas.py`, `pnlp_bench/bigs/schemas.py`, `core_nodes` here); the config package
(`pnlp_bench/conf/__init__.py`) stores them in Hydra's ConfigStore when Hydra first reads it.

The nodes are plain, untyped mappings, not structured configs: the types and values are checked once the
config is composed (`pnlp_bench/commands/config_check.py`), which names the key, the value and what is
allowed in one line, where a typed merge would fail earlier with OmegaConf's own message.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pnlp_bench.core.registry import ConfigError, Registry

PREFIX = "schema_"
MISSING = "???"  # OmegaConf's mark of a value the config must give (a field with no default)


def plain(value: Any) -> Any:
    """A default as a config value: tuples as lists, nested dataclasses as mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def defaults_of(config_class: type, **given: Any) -> dict[str, Any]:
    """Every field of a config dataclass with its default (`???` where it has none), `given` on top."""
    node: dict[str, Any] = {}
    for field in dataclasses.fields(config_class):
        if field.default is not dataclasses.MISSING:
            node[field.name] = plain(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            node[field.name] = plain(field.default_factory())
        else:
            node[field.name] = MISSING
    unknown = sorted(set(given) - set(node) - {"name"})
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field {unknown[0]!r}")
    return node | given


def registry_nodes(registry: Registry, group: str) -> dict[str, dict[str, Any]]:
    """One node per registered name of a group (`projection_minhash`): its name and its config's defaults."""
    return {f"{group}_{name}": {"name": name, **defaults_of(registry.config_class(name))} for name in registry.names()}


@dataclass
class RunOptions:
    """The top-level keys of `conf/config.yaml` that no config group owns."""

    seed: int = 0
    quiet: bool = False
    # A run started again with the same config in the same folder goes on from its last finished epoch.
    resume: bool = True
    # backbone=bigs: start from a pretrained encoder: run:<config hash> (that finished run in the results
    # store, by identity: pnlp_bench/bigs/checkpoints.py; run:<config hash>@<step> for its snapshot at that
    # step), a run folder, a .pt checkpoint, or hf:<repo> (online)
    init: str | None = None
    output_root: str = "outputs"

    def validate(self, where: str) -> None:
        if not 0 <= self.seed < 2**32:  # numpy's seed range; torch's is wider
            raise ConfigError(f"seed must be in [0, 2**32 - 1], got {self.seed}")


def core_nodes() -> dict[str, dict[str, Any]]:
    """The nodes of the contract itself: the top-level run options and the loggers."""
    from pnlp_bench.core.loggers import LOGGERS

    return {"run": defaults_of(RunOptions), **registry_nodes(LOGGERS, "logger")}


def store(*families: dict[str, dict[str, Any]]) -> None:
    """Put every family's nodes in Hydra's ConfigStore as `schema_<name>` (one name, one owner)."""
    from hydra.core.config_store import ConfigStore

    seen: set[str] = set()
    config_store = ConfigStore.instance()
    for nodes in families:
        for name, node in nodes.items():
            if name in seen:
                raise ValueError(f"config node {PREFIX}{name} is defined twice")
            seen.add(name)
            config_store.store(name=PREFIX + name, node=node)
