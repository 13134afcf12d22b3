"""Config composition for everything that is not `bench run` itself (tables, speed, tools, tests), and the
resolvers the configs use, registered when this module is imported (so whoever composes imports it).

`compose(overrides)` gives what `bench run <overrides>` would run with (without the `hydra` node);
`default_config()` the resolved config of `bench run` with no overrides, the baseline of a run's identity."""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from pnlp_bench.core.identity import identity_of, read_view

CONFIG_MODULE = "pnlp_bench.conf"


def path_component(text: object) -> str:
    """One folder name from a config choice: separators and `..` flattened, so a run folder built from
    choices (`data=../../x`) cannot leave `output_root/runs`."""
    flat = re.sub(r"[\\/:]+", "_", str(text)).replace("..", "_").strip(" .")
    return flat or "_"


def _asset(name: str) -> str:
    return str(Path(str(resources.files("pnlp_bench") / "assets" / name)))


def _run_identity(*, _root_: DictConfig) -> str:
    """The run folder's name part: the same identity the store and the tables use (core/identity.py).

    A config that does not resolve (a BiGS model on a pNLP data set) gets a name from its unresolved text, so
    Hydra can start the job and the run can fail with its own one-line error there."""
    try:
        return config_identity(_root_)
    except Exception:  # noqa: BLE001  (the job reports the config's error itself)
        task = OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"])
        return "unresolved-" + hashlib.sha256(OmegaConf.to_yaml(task).encode()).hexdigest()[:8]


OmegaConf.register_new_resolver("bench_hash", lambda text: hashlib.sha256(str(text).encode()).hexdigest()[:8], replace=True)
OmegaConf.register_new_resolver("bench_dir", path_component, replace=True)
OmegaConf.register_new_resolver("bench_asset", _asset, replace=True)
OmegaConf.register_new_resolver("bench_identity", _run_identity, replace=True)


def options(node: DictConfig) -> dict[str, Any]:
    """A config node resolved into plain Python values."""
    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


def compose(overrides: list[str] | None = None) -> DictConfig:
    """The task config `bench run <overrides>` composes, interpolations left in place (resolve when reading).

    Inside a running Hydra app (a `bench run` job) Hydra's own loader is used; elsewhere a temporary one."""
    overrides = list(overrides or [])
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name="config", overrides=overrides)
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


# what compose() and the identity read besides the config files (a change to either changes identities)
IDENTITY_SOURCES = ("core/compose.py", "core/identity.py")


@functools.cache
def compose_fingerprint() -> str:
    """What a composed config is a function of, besides its overrides: every file of the config tree, the code
    that composes and hashes it, the package version, Hydra's and OmegaConf's versions and where the package
    lives (asset paths resolve into configs; the one environment variable the configs read, BENCH_OUTPUT_ROOT,
    sets a key the identity ignores). Equal fingerprints compose equal identities; `bench tables` keeps them
    under it across processes (commands/table.py)."""
    import hydra
    import omegaconf

    import pnlp_bench

    package = Path(pnlp_bench.__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted((package / "conf").rglob("*.yaml")) + [package / name for name in IDENTITY_SOURCES]
    for path in files:
        digest.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes() + b"\0")
    for part in (pnlp_bench.__version__, hydra.__version__, omegaconf.__version__, str(package)):
        digest.update(f"{part}\0".encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    return OmegaConf.to_container(compose([]), resolve=True)  # type: ignore[return-value]


def default_config() -> dict[str, Any]:
    """The resolved config of `bench run` with no overrides (a fresh copy: callers may change it)."""
    import copy

    return copy.deepcopy(_defaults())


def resolved_identity(resolved: dict[str, Any]) -> str:
    """The run identity of a resolved config (core/identity.py's rule, against today's defaults)."""
    return identity_of(resolved, _defaults())  # identity_of reads the defaults through a copy of its own


def config_identity(cfg: DictConfig) -> str:
    """The identity of a composed config (resolved here): what `bench run`, `bench table` and the store all
    call a run."""
    return resolved_identity(read_view(cfg))


def cell_identity(cfg: DictConfig) -> str:
    """The identity of the run's table cell: its config with the seed at its default, so the seeds of one cell
    share it (a logger's group)."""
    resolved = read_view(cfg)
    resolved["seed"] = _defaults()["seed"]
    return resolved_identity(resolved)
