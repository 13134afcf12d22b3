"""`backbone=none`: projection + bottleneck + head; context comes only from the projection window."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pnlp_bench.mixer.models.registry import BACKBONES


@dataclass
class NoBackboneConfig:
    pass


class NoBackbone(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x


@BACKBONES.register("none", NoBackboneConfig)
def build_none(config: NoBackboneConfig, seq_len: int, dim: int) -> NoBackbone:
    return NoBackbone()
