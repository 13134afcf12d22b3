"""What every projection hands to the bottleneck: a few integer features per word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from pnlp_bench.registry import Registry


@dataclass
class WordFeatures:
    """Per-word sparse features: row v holds word v's `k` active buckets in [0, feature_size).

    `values` (same shape) weights each bucket; None means every entry counts 1, which is the counting
    Bloom filter of MinHash. Duplicate buckets in a row add up, exactly like the counts they stand for.
    """

    indices: torch.Tensor
    values: torch.Tensor | None = None


class Projection(Protocol):
    feature_size: int
    features_per_word: int

    def word_features(self, words: Sequence[str]) -> WordFeatures: ...

    def cache_key(self) -> str: ...


PROJECTIONS: Registry[Projection] = Registry("projection")
