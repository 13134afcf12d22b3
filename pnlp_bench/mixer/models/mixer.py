"""The MLP-Mixer backbone (Tolstikhin et al. 2021) as pNLP-Mixer uses it over word positions.

X in R^{S x B}. Token mixing: X <- X + MLP_tok(LN(X)^T)^T with MLP_tok: S -> D_S -> S, which mixes
information across positions (padding included, as in the paper: the MLP works over the fixed length S).
Channel mixing: X <- X + MLP_ch(LN(X)) with MLP_ch: B -> D_C -> B. GELU inside both; no final LayerNorm,
like the public configuration. No dropout by default (the paper states none); `backbone.dropout=p` adds
dropout after each GELU and on each MLP's output before its residual, a regulariser the paper does not state
(results/fidelity.md says what it does).

Padding-aware compute (`padding_aware`, on by default; the same numbers up to float rounding,
tests/test_padding_aware.py): most rows fill few of the S positions. Positions from `uniform_from` on (no word
in their window) hold the same vector, the bottleneck's bias, in every row, so the first token-mixing matmul
takes the word positions plus one column sum of its weight for the rest (what `MixerPredictor` does for one
utterance); and the head reads only word positions, so the last block's second token-mixing matmul, its
channel mixing and the head run on the longest row's positions only (the tagger's logits elsewhere are its
bias, the logits of the zero vector the plain path would hand it there, and the loss ignores them anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pnlp_bench.mixer.models.registry import BACKBONES
from pnlp_bench.core.registry import ConfigError


@dataclass
class MixerConfig:
    num_layers: int = 2
    token_hidden: int = 256
    channel_hidden: int = 256
    dropout: float = 0.0  # none in the paper; after each GELU and on each MLP's output (module doc)
    # skip the work on padding positions (the same numbers up to float rounding; the module doc)
    padding_aware: bool = True

    def validate(self, where: str) -> None:
        if self.num_layers < 1:
            raise ConfigError(f"{where}.num_layers must be >= 1, got {self.num_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout}")


class FeedForward(nn.Sequential):
    """Linear -> GELU -> Linear, with optional dropout applied functionally, so the modules (and so the
    state-dict keys and `MixerPredictor`'s weight extraction) are the same with and without it."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.dropout and self.training):
            return super().forward(x)
        hidden = F.dropout(self[1](self[0](x)), self.dropout, training=True)
        return F.dropout(self[2](hidden), self.dropout, training=True)


class MixerBlock(nn.Module):
    def __init__(self, seq_len: int, dim: int, token_hidden: int, channel_hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.token_norm = nn.LayerNorm(dim)
        self.token_mixing = FeedForward(seq_len, token_hidden, dropout)
        self.channel_norm = nn.LayerNorm(dim)
        self.channel_mixing = FeedForward(dim, channel_hidden, dropout)

    def forward(self, x: torch.Tensor, uniform_from: int | None = None, keep: int | None = None) -> torch.Tensor:
        """uniform_from: every row of x equals the same vector from this position on; keep: only the first
        `keep` positions of the output are needed (the result has that many). None: the plain block."""
        if uniform_from is None and keep is None:
            x = x + self.token_mixing(self.token_norm(x).transpose(1, 2)).transpose(1, 2)
            return x + self.channel_mixing(self.channel_norm(x))
        first, activation, second = self.token_mixing
        dropout = self.token_mixing.dropout if self.training else 0.0
        if uniform_from is not None:
            # Positions K … S-1 hold one vector: it enters once, with their weight columns summed.
            weight = torch.cat([first.weight[:, :uniform_from], first.weight[:, uniform_from:].sum(1, keepdim=True)], dim=1)
            hidden = F.linear(self.token_norm(x[:, : uniform_from + 1]).transpose(1, 2), weight, first.bias)
        else:
            hidden = first(self.token_norm(x).transpose(1, 2))
        hidden = F.dropout(activation(hidden), dropout, training=dropout > 0)
        if keep is not None:
            mixed = F.linear(hidden, second.weight[:keep], second.bias[:keep])
            x = x[:, :keep]
        else:
            mixed = second(hidden)
        x = x + F.dropout(mixed, dropout, training=dropout > 0).transpose(1, 2)
        return x + self.channel_mixing(self.channel_norm(x))


class Mixer(nn.Module):
    def __init__(self, config: MixerConfig, seq_len: int, dim: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                MixerBlock(seq_len, dim, config.token_hidden, config.channel_hidden, config.dropout)
                for _ in range(config.num_layers)
            )
        )
        self.padding_aware = config.padding_aware

    def forward(self, x: torch.Tensor, mask: torch.Tensor, window: int | None = None, trim: bool = False) -> torch.Tensor:
        """window (from the model, padding-aware only): the bottleneck's window w, so that from the longest
        row's length + w on no position has a word in its window and every row of x is the bottleneck's bias.
        Positions the mask leaves out of every row come back as zeros, or, with `trim`, not at all: the result
        then has the longest row's positions only (the heads take that, see PNLPModel.forward)."""
        if window is None:
            return self.blocks(x)
        length = x.shape[1]
        keep = int(mask.sum(dim=1).max())
        uniform_from = min(keep + window, length)
        last = len(self.blocks) - 1
        for index, block in enumerate(self.blocks):
            x = block(
                x,
                uniform_from if index == 0 and uniform_from < length else None,
                keep if index == last and keep < length else None,
            )
        return x if trim else F.pad(x, (0, 0, 0, length - x.shape[1]))


@BACKBONES.register("mixer", MixerConfig)
def build_mixer(config: MixerConfig, seq_len: int, dim: int) -> Mixer:
    return Mixer(config, seq_len, dim)
