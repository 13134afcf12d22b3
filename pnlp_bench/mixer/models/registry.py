"""Registries of backbones and heads; each module registers itself under a short name."""

from __future__ import annotations

from torch import nn

from pnlp_bench.core.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
HEADS: Registry[nn.Module] = Registry("head")
