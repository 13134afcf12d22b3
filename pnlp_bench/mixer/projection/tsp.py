"""The ternary sparse projection (TSP) of PRADO / pQRNN (Kaliamoorthi et al. 2019, 2021): Table 1.

In pQRNN's projection op, a token's hash is read two bits at a time and each pair becomes one ternary
feature through the table 00 -> 0, 01 -> +1, 10 -> -1, 11 -> 0, giving F features per token of which
half are zero on average (P(+1) = P(-1) = 1/4, P(0) = 1/2): that 50% is the sparsity, the same here.

The reading implemented here (`unit`):
- `grams` (default): the unit hashed is each of the word's grams, the very grams MinHash uses
  (`minhash.word_gram_lists`: trigrams of the mBERT-cased WordPiece pieces, `##` pieces in their own
  namespace, short pieces whole, an unsplittable word from its own trigrams), counted with repeats. Each
  gram g becomes t(g) in {-1, 0, +1}^F by the table above, read from 2F well-mixed bits of g
  (`minhash.gram_bits`), and the word's vector is the sum over its grams of t(g): small integers, in
  {-1, 0, +1} for a word of one gram. Words that share grams share part of their vector, like MinHash.
- `word`: pQRNN's own unit, the whole word (cased here, as everywhere in this project; pQRNN lower-cases
  and may add a capitalisation feature): one t(word) per word, every value in {-1, 0, +1}, and two
  different words are unrelated.
The bottleneck sees the vector densely: indices 0..F-1 with the vector as values (int16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pnlp_bench.core.paths import MBERT_CASED_VOCAB
from pnlp_bench.mixer.projection.base import PROJECTIONS, WordFeatures, check_size_and_window
from pnlp_bench.mixer.projection.minhash import (
    NAMESPACE_WHOLE_WORD,
    RULE_VERSION,
    gram_bits,
    sum_over_groups,
    vocab_digest,
    word_gram_lists,
)
from pnlp_bench.core.registry import ConfigError

TSP_VERSION = 1
WORDS_PER_CHUNK = 4096
# Two bits per feature, low bit first: 00 -> 0, 01 -> +1, 10 -> -1, 11 -> 0 (pQRNN's table).
TERNARY_TABLE = np.array([0, 1, -1, 0], dtype=np.int16)


@dataclass
class TSPConfig:
    feature_size: int = 1024
    window: int = 1
    seed: int = 0
    unit: str = "grams"  # grams: sum over the word's trigrams; word: pQRNN's unit, the whole word hashed once
    vocab: str | None = None

    def validate(self, where: str) -> None:
        check_size_and_window(self.feature_size, self.window, where)
        if self.unit not in {"grams", "word"}:
            raise ConfigError(f"{where}.unit must be grams or word, got {self.unit!r}")


def ternary_vectors(units: Sequence[bytes], feature_size: int, seed: int) -> np.ndarray:
    """[len(units), F] int16 in {-1, 0, +1}: pQRNN's 2-bits-per-feature table over each unit's hash bits."""
    bits = gram_bits(units, 2 * feature_size, seed).astype(np.int64)
    return TERNARY_TABLE[bits[:, 0::2] + 2 * bits[:, 1::2]]


class TSPProjection:
    def __init__(self, config: TSPConfig) -> None:
        self.config = config
        self.vocab_path = Path(config.vocab) if config.vocab else MBERT_CASED_VOCAB
        self.feature_size = config.feature_size
        self.features_per_word = config.feature_size

    def cache_key(self) -> str:
        return (
            f"tsp-v{TSP_VERSION}-{self.config.unit}-g{RULE_VERSION}-{vocab_digest(self.vocab_path)}"
            f"-s{self.config.seed}-F{self.config.feature_size}"
        )

    def vectors(self, words: Sequence[str]) -> np.ndarray:
        """[len(words), F] int16: each word's summed ternary vector."""
        if self.config.unit == "word":
            units = [NAMESPACE_WHOLE_WORD + word.encode("utf-8") for word in words]
            return ternary_vectors(units, self.config.feature_size, self.config.seed)
        out = np.empty((len(words), self.config.feature_size), dtype=np.int16)
        for first in range(0, len(words), WORDS_PER_CHUNK):
            gram_lists = word_gram_lists(words[first : first + WORDS_PER_CHUNK], self.vocab_path)
            gram_index: dict[bytes, int] = {}
            gram_ids = np.fromiter(
                (gram_index.setdefault(gram, len(gram_index)) for grams in gram_lists for gram in grams), dtype=np.int64
            )
            sizes = np.fromiter((len(grams) for grams in gram_lists), dtype=np.int64, count=len(gram_lists))
            per_gram = ternary_vectors(list(gram_index), self.config.feature_size, self.config.seed)
            out[first : first + len(gram_lists)] = sum_over_groups(per_gram, gram_ids, sizes)
        return out

    def word_features(self, words: Sequence[str]) -> WordFeatures:
        return WordFeatures.from_dense(torch.from_numpy(self.vectors(list(words))))


@PROJECTIONS.register("tsp", TSPConfig)
def build_tsp(config: TSPConfig) -> TSPProjection:
    return TSPProjection(config)
