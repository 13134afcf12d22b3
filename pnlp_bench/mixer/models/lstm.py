"""A bidirectional LSTM backbone over word positions: the "LSTM" row of Table 2.

Each sentence is packed to its real length (the padding mask), so the backward direction starts at the
sentence's last word, not at the padding, and no real position sees padding. The two directions' states
are concatenated (2H) and, when 2H differs from the bottleneck width B, projected back to B by a Linear
so the task head is the same as the mixer's. Padding positions come out as the projection's bias (the
head ignores them). Hidden size and depth are chosen to land near the paper's parameter count: see
conf/backbone/lstm.yaml. `dropout` (0 by default, as the paper states none) drops the LSTM's input and its
output states, and between layers when there are several; torch's own LSTM dropout acts only between layers,
so with one layer it would do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pnlp_bench.mixer.models.registry import BACKBONES
from pnlp_bench.core.registry import ConfigError


@dataclass
class LSTMConfig:
    hidden_size: int = 224
    num_layers: int = 1
    dropout: float = 0.0

    def validate(self, where: str) -> None:
        if self.hidden_size < 1:
            raise ConfigError(f"{where}.hidden_size must be positive, got {self.hidden_size}")
        if self.num_layers < 1:
            raise ConfigError(f"{where}.num_layers must be >= 1, got {self.num_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout}")


class BiLSTM(nn.Module):
    def __init__(self, config: LSTMConfig, dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )
        both = 2 * config.hidden_size
        self.output = nn.Linear(both, dim) if both != dim else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # An empty sentence is run as one (padding) position: packing needs a length of at least 1.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.dropout(x), lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])
        return self.output(self.dropout(states))


@BACKBONES.register("lstm", LSTMConfig)
def build_lstm(config: LSTMConfig, seq_len: int, dim: int) -> BiLSTM:
    return BiLSTM(config, dim)
