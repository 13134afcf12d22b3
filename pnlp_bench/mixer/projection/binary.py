"""Binary hash features: each word's F-bit binary hash code, one of the projections of Table 1.

The reading implemented here: the word itself (its exact, cased string, in a namespace of its own) is
hashed to F well-mixed bits (`minhash.gram_bits`, the project's seeded xxHash family with a splitmix64
finaliser), and the bottleneck sees those bits as a binary vector of size F (indices 0..F-1, the bits as
values; about F/2 ones per word). It is a hashed identity code: equal words share the code, and any two
different words, however alike ("flight", "flights"), get independent codes. That is the contrast with
the projections built from subword grams (MinHash, SimHash, TSP), which let similar words share features.
No tokenizer is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pnlp_bench.mixer.projection.base import PROJECTIONS, WordFeatures, check_size_and_window
from pnlp_bench.mixer.projection.minhash import NAMESPACE_WHOLE_WORD, gram_bits

BINARY_VERSION = 1


@dataclass
class BinaryConfig:
    feature_size: int = 1024
    window: int = 1
    seed: int = 0

    def validate(self, where: str) -> None:
        check_size_and_window(self.feature_size, self.window, where)


class BinaryProjection:
    def __init__(self, config: BinaryConfig) -> None:
        self.config = config
        self.feature_size = config.feature_size
        self.features_per_word = config.feature_size

    def cache_key(self) -> str:
        return f"binary-v{BINARY_VERSION}-s{self.config.seed}-F{self.config.feature_size}"

    def codes(self, words: Sequence[str]) -> np.ndarray:
        """[len(words), F] uint8 bits: each word's hash code."""
        units = [NAMESPACE_WHOLE_WORD + word.encode("utf-8") for word in words]
        return gram_bits(units, self.config.feature_size, self.config.seed)

    def word_features(self, words: Sequence[str]) -> WordFeatures:
        return WordFeatures.from_dense(torch.from_numpy(self.codes(list(words)).astype(np.int8)))


@PROJECTIONS.register("binary", BinaryConfig)
def build_binary(config: BinaryConfig) -> BinaryProjection:
    return BinaryProjection(config)
