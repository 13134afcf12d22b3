"""Composing the project's Hydra config the way `bench run` does, for tests."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

import pnlp_bench.run  # noqa: F401  (registers the resolvers)

CONF = Path(__file__).resolve().parents[1] / "pnlp_bench" / "conf"


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_module(config_module="pnlp_bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [], return_hydra_config=False)


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))
