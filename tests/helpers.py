"""Composing the project's Hydra config the way `bench run` does, for tests."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pnlp_bench.core.compose import compose

CONF = Path(__file__).resolve().parents[1] / "pnlp_bench" / "conf"


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    return compose(overrides)


def group_options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))
