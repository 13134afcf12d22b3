"""The linear bottleneck over windowed projection features, computed from integer bucket indices.

Position t's input is the concatenation of the counting vectors of words t-w … t+w, size (2w+1)·F, zero
outside the sentence and at padding. A Linear((2w+1)·F → B) over it equals a sum of the weight rows
picked by the active buckets (offset by (k+w)·F for neighbour k), each counted as often as it occurs.
Three paths compute exactly that:
- "bag": `embedding_bag` over the non-padding indices only: the fewest operations; right for the CPU;
- "dense": counts scattered into a (2w+1)·F buffer on the device, then one matmul: its backward avoids the
  atomic adds of `embedding_bag` and uses tensor cores, so it trains faster on a GPU.
- "words": once per word rather than per position: Z = c_word @ [W_0 | … | W_2w] (the (2w+1) blocks of the
  weight side by side), then position t adds block s of its neighbour t-w+s's row of Z. Only positions within
  w of a word are computed (the rest hold the bias). Z comes from `embedding_bag` over each word's n buckets
  in fp32, or, under bf16 autocast, from the word's count vector times the stacked weight in one bf16 matmul
  (counts up to 256 are exact in bf16; the weight is rounded to bf16 as autocast does for any Linear), which
  on CPUs with AMX is the fastest: measured in `bench speed`. Projections that carry a value per bucket
  (Binary, SimHash, TSP: hundreds to F active buckets a word, where MinHash has n) always take the matmul:
  their dense per-word vectors make the bag's gathers and scattered backward the costly part.
"auto" picks "dense" on CUDA, "words" under bf16 autocast on the CPU or for weighted projections, and "bag"
otherwise. All equal `torch.nn.Linear` over the dense counts (tests/test_bottleneck.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pnlp_bench.core.registry import ConfigError

PAD = -1


def window_indices(indices: torch.Tensor, window: int, feature_size: int) -> torch.Tensor:
    """[B, S, k] word buckets (PAD for padding) -> [B, S, (2w+1)·k] indices into the (2w+1)·F input.

    Neighbour k = -w…w of position t contributes its buckets shifted by (k+w)·F; positions outside the
    sentence contribute PAD, so the result is right for every w >= 0, not only w <= 1.
    """
    if window == 0:
        return indices
    batch, length, per_word = indices.shape
    padded = F.pad(indices, (0, 0, window, window), value=PAD)
    pieces = []
    for slot in range(2 * window + 1):
        neighbour = padded[:, slot : slot + length]
        pieces.append(torch.where(neighbour == PAD, neighbour, neighbour + slot * feature_size))
    return torch.cat(pieces, dim=-1)


class ProjectionBottleneck(nn.Module):
    """`word_dropout` (training only, off by default; the paper states no such thing) blanks each word's
    features with that probability before the window is built, so the word is missing from its own position
    and from its neighbours' windows: the projection counterpart of replacing a word by an unknown-word token."""

    def __init__(
        self,
        feature_size: int,
        window: int,
        out_dim: int,
        path: str = "auto",
        word_dropout: float = 0.0,
        init: str = "uniform",
        init_std: float = 1.0,
    ) -> None:
        super().__init__()
        if path not in PATHS:
            raise ValueError(f"bottleneck path must be {', '.join(PATHS)}, got {path!r}")
        self.word_dropout = word_dropout
        self.feature_size = feature_size
        self.window = window
        self.in_dim = (2 * window + 1) * feature_size
        self.out_dim = out_dim
        self.path = path
        # Stored as [in, out] (embedding orientation) so both paths read rows without a transpose.
        self.weight = nn.Parameter(torch.empty(self.in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        bound = 1.0 / math.sqrt(self.in_dim)
        nn.init.uniform_(self.bias, -bound, bound)
        if init == "normal":  # an embedding table (one active row per word)
            nn.init.normal_(self.weight, std=init_std)
        else:  # nn.Linear's default, the paper's bottleneck over the counting vectors
            nn.init.uniform_(self.weight, -bound, bound)

    def resolved_path(self, device: torch.device, weighted: bool = False) -> str:
        """The path "auto" stands for: `weighted` when the projection gives a value per bucket."""
        if self.path != "auto":
            return self.path
        if device.type == "cuda":
            return "dense"
        return "words" if torch.is_autocast_enabled(device.type) or weighted else "bag"

    def forward(self, indices: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """indices: [B, S, k] integer buckets in [0, F) with PAD (-1) for padding; values: optional weights."""
        indices = indices.long()
        path = self.resolved_path(indices.device, weighted=values is not None)
        by_word = path == "words"
        words = (indices != PAD).any(-1) if by_word else None  # word positions, before word dropout blanks some
        if self.word_dropout and self.training:
            dropped = torch.rand(indices.shape[:2], device=indices.device) < self.word_dropout
            indices = indices.masked_fill(dropped[..., None], PAD)
        if words is not None:
            return self._words(indices, words, values)
        indices = window_indices(indices, self.window, self.feature_size)
        if values is not None and self.window:
            values = window_values(values, self.window)
        batch, length, width = indices.shape
        flat = indices.reshape(batch * length, width)
        flat_values = None if values is None else values.reshape(batch * length, width)
        if path == "bag":
            out = self._bag(flat, flat_values)
        else:
            out = self._dense(flat, flat_values)
        return out.reshape(batch, length, self.out_dim)

    def _bag(self, flat: torch.Tensor, flat_values: torch.Tensor | None) -> torch.Tensor:
        active = flat != PAD
        if flat_values is not None:
            # Zero weights add nothing: skipping them halves the work for the dense bit and ternary projections.
            active &= flat_values != 0
        offsets = torch.zeros(flat.shape[0], dtype=torch.long, device=flat.device)
        offsets[1:] = active.sum(dim=1).cumsum(0)[:-1]
        weights = None if flat_values is None else flat_values[active].to(self.weight.dtype)
        summed = F.embedding_bag(flat[active], self.weight, offsets, mode="sum", per_sample_weights=weights)
        return summed + self.bias

    def _dense(self, flat: torch.Tensor, flat_values: torch.Tensor | None) -> torch.Tensor:
        # Padding goes to an extra column that is dropped, so no mask gather is needed on the device.
        device_type = flat.device.type
        autocast = torch.is_autocast_enabled(device_type)
        dtype = torch.get_autocast_dtype(device_type) if autocast else self.weight.dtype
        counts = torch.zeros(flat.shape[0], self.in_dim + 1, dtype=dtype, device=flat.device)
        source = torch.ones_like(flat, dtype=dtype) if flat_values is None else flat_values.to(dtype)
        counts.scatter_add_(1, torch.where(flat == PAD, self.in_dim, flat), source)
        return torch.addmm(self.bias.to(dtype), counts[:, : self.in_dim], self.weight.to(dtype))

    def _words(self, indices: torch.Tensor, words: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """The "words" path: indices [B, S, n] (PAD for padding and dropped words), words [B, S] the word positions,
        values [B, S, n] the projection's weight per bucket (None: each bucket counts once)."""
        batch, length, _ = indices.shape
        slots, dim = 2 * self.window + 1, self.out_dim
        stacked = self.weight.view(slots, self.feature_size, dim).permute(1, 0, 2).reshape(self.feature_size, slots * dim)
        rows = indices[words]  # [N, n]
        count = rows.shape[0]
        device_type = indices.device.type
        autocast = torch.is_autocast_enabled(device_type)
        if autocast or values is not None:
            dtype = torch.get_autocast_dtype(device_type) if autocast else self.weight.dtype
            counts = torch.zeros(count, self.feature_size + 1, dtype=dtype, device=indices.device)
            source = torch.ones_like(rows, dtype=dtype) if values is None else values[words].to(dtype)
            counts.scatter_add_(1, torch.where(rows == PAD, self.feature_size, rows), source)
            per_word = counts[:, : self.feature_size] @ stacked.to(dtype)
        else:
            active = rows != PAD
            offsets = torch.zeros(count, dtype=torch.long, device=indices.device)
            offsets[1:] = active.sum(dim=1).cumsum(0)[:-1]
            per_word = F.embedding_bag(rows[active], stacked, offsets, mode="sum")
        # row `count` of the table is the zero vector: what a neighbour that is no word contributes
        table = torch.cat([per_word, per_word.new_zeros(1, slots * dim)]).view(count + 1, slots, dim)
        index = torch.full((batch, length), count, dtype=torch.long, device=indices.device)
        index[words] = torch.arange(count, device=indices.device)
        # positions within w of a word: the only ones that get more than the bias
        near = F.max_pool1d(words[:, None].float(), slots, stride=1, padding=self.window)[:, 0] > 0
        row, position = near.nonzero(as_tuple=True)
        padded = F.pad(index, (self.window, self.window), value=count)
        summed = sum(table[padded[row, position + slot], slot] for slot in range(slots))
        out = self.bias.to(summed.dtype).expand(batch, length, dim).clone()
        out[row, position] += summed
        return out


PATHS = ("auto", "bag", "dense", "words")


@dataclass
class BottleneckOptions:
    """`bottleneck` in `conf/config.yaml`: B (from the size preset), the path above and a regulariser."""

    dim: int | None = None  # null without a size group (BiGS presets)
    # auto: dense counts + matmul on CUDA, "words" under bf16 autocast on the CPU, embedding_bag elsewhere
    path: str = "auto"
    # training only: blank each word's features with this probability (a regulariser the paper does not state)
    word_dropout: float = 0.0

    def validate(self, where: str) -> None:
        if self.dim is not None and self.dim < 1:
            raise ConfigError(f"{where}.dim must be >= 1, got {self.dim}")
        if self.path not in PATHS:
            raise ConfigError(f"{where}.path must be {', '.join(PATHS)}, got {self.path!r}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"{where}.word_dropout must be in [0, 1), got {self.word_dropout}")


def window_values(values: torch.Tensor, window: int) -> torch.Tensor:
    padded = F.pad(values, (0, 0, window, window), value=0.0)
    length = values.shape[1]
    return torch.cat([padded[:, slot : slot + length] for slot in range(2 * window + 1)], dim=-1)


def dense_counts(indices: torch.Tensor, window: int, feature_size: int, values: torch.Tensor | None = None) -> torch.Tensor:
    """The reference dense input [B, S, (2w+1)·F] that public implementations build per sample."""
    windowed = window_indices(indices.long(), window, feature_size)
    if values is not None and window:
        values = window_values(values, window)
    in_dim = (2 * window + 1) * feature_size
    counts = torch.zeros(*windowed.shape[:2], in_dim + 1)
    source = torch.ones(windowed.shape) if values is None else values.float()
    counts.scatter_add_(2, torch.where(windowed == PAD, in_dim, windowed), source)
    return counts[..., :in_dim]
