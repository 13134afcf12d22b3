"""A transformer encoder backbone over word positions: the "transformer" row of Table 2.

Pre-LayerNorm encoder layers (multi-head self-attention and a GELU feed-forward, each with a residual),
a final LayerNorm, and position encodings added to the bottleneck output: sinusoidal (no parameters) or
learned (S x B). Attention never looks at padding (key padding mask), so a real position's output does
not depend on the padding; padding positions get outputs too, which the head ignores. No dropout, like
the mixer. Width is the bottleneck's B; depth, heads and feed-forward size are chosen to land near the
paper's parameter count: see conf/backbone/transformer.yaml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from pnlp_bench.mixer.models.registry import BACKBONES
from pnlp_bench.core.registry import ConfigError


@dataclass
class TransformerConfig:
    num_layers: int = 1
    num_heads: int = 4
    ff_hidden: int = 256
    position: str = "sinusoidal"
    dropout: float = 0.0

    def validate(self, where: str) -> None:
        if self.num_layers < 1:
            raise ConfigError(f"{where}.num_layers must be >= 1, got {self.num_layers}")
        if self.num_heads < 1 or self.ff_hidden < 1:
            raise ConfigError(f"{where}.num_heads and {where}.ff_hidden must be positive")
        if self.position not in {"sinusoidal", "learned"}:
            raise ConfigError(f"{where}.position must be sinusoidal or learned, got {self.position!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout}")


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """[length, dim]: sin on even channels, cos on odd ones, wavelengths from 2π to 10000·2π (Vaswani et al.)."""
    positions = torch.arange(length, dtype=torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies[: dim // 2])
    return table


class TransformerEncoder(nn.Module):
    def __init__(self, config: TransformerConfig, seq_len: int, dim: int) -> None:
        super().__init__()
        if dim % config.num_heads:
            raise ConfigError(f"backbone.num_heads ({config.num_heads}) must divide the bottleneck width ({dim})")
        if config.position == "learned":
            self.positions = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        else:
            self.register_buffer("positions", sinusoidal_positions(seq_len, dim), persistent=False)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                config.num_heads,
                dim_feedforward=config.ff_hidden,
                dropout=config.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padding = ~mask
        # A sentence with no word would attend to nothing (NaN); let it attend to its first position.
        padding[:, 0] &= mask.any(dim=1)
        x = x + self.positions[: x.shape[1]].to(x.dtype)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        return self.norm(x)


@BACKBONES.register("transformer", TransformerConfig)
def build_transformer(config: TransformerConfig, seq_len: int, dim: int) -> TransformerEncoder:
    return TransformerEncoder(config, seq_len, dim)
