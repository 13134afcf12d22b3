"""What every projection hands to the bottleneck: integer buckets per word, optionally weighted.

MinHash gives a few unweighted buckets per word (k = n of F); the dense projections of Table 1 (SimHash,
binary, TSP, BERT embeddings) give every bucket (k = F) weighted by their vector (`WordFeatures.from_dense`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from pnlp_bench.core.registry import ConfigError, Registry


@dataclass
class WordFeatures:
    """Per-word sparse features: row v holds word v's `k` active buckets in [0, feature_size).

    `values` (same shape) weights each bucket; None means every entry counts 1, which is the counting
    Bloom filter of MinHash. Duplicate buckets in a row add up, exactly like the counts they stand for.
    """

    indices: torch.Tensor
    values: torch.Tensor | None = None

    @classmethod
    def from_dense(cls, rows: torch.Tensor) -> "WordFeatures":
        """Dense per-word vectors [V, F] (SimHash bits, TSP sums, BERT embeddings) as every bucket 0…F-1
        weighted by the vector: the bottleneck then computes exactly Linear(F -> B) over them."""
        feature_size = rows.shape[1]
        dtype = torch.int16 if feature_size <= torch.iinfo(torch.int16).max else torch.int32
        indices = torch.arange(feature_size, dtype=dtype).expand(rows.shape[0], feature_size).contiguous()
        return cls(indices=indices, values=rows)


def check_size_and_window(feature_size: int, window: int, where: str) -> None:
    """The checks every hashed projection's config shares: F >= 1 buckets and a window w >= 0."""
    if feature_size < 1:
        raise ConfigError(f"{where}.feature_size must be positive, got {feature_size}")
    if window < 0:
        raise ConfigError(f"{where}.window must be >= 0, got {window}")


class Projection(Protocol):
    feature_size: int
    features_per_word: int

    def word_features(self, words: Sequence[str]) -> WordFeatures: ...

    def cache_key(self) -> str: ...


PROJECTIONS: Registry[Projection] = Registry("projection")
