"""SimHash (Charikar 2002) over a word's subword trigrams: one of the hashing projections of Table 1.

The reading implemented here:
- A word's features are the grams MinHash uses (`minhash.word_gram_lists`): the character trigrams of its
  mBERT-cased WordPiece pieces, `##` continuations in their own namespace, short pieces whole, a word
  WordPiece cannot split taken from its own trigrams. They form a multiset: a gram occurring twice counts
  twice (SimHash weights features by frequency).
- Each gram g gets a random direction r(g) in {-1, +1}^F: bit j of its mixed 64-bit hashes decides the sign
  of component j (`minhash.gram_bits`), so r is a ±1 random projection of the one-hot gram, fixed by the
  gram's bytes and the seed.
- The word's signature is the F-bit sign pattern of s = sum over its grams of r(g): bit j is 1 when
  s_j > 0. A tie (s_j = 0, frequent when the count of grams is even) goes to the sign of the word's first
  gram, so ties do not bias the bits towards 0.
- The bottleneck sees the signature as a binary vector of size F: indices 0..F-1 with the bits as
  values (about F/2 ones per word). Words whose gram sets overlap agree on more bits (the probability
  that a bit agrees is 1 - angle(s_a, s_b)/pi), which is the point of SimHash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pnlp_bench.core.paths import MBERT_CASED_VOCAB
from pnlp_bench.mixer.projection.base import PROJECTIONS, WordFeatures, check_size_and_window
from pnlp_bench.mixer.projection.minhash import RULE_VERSION, gram_bits, sum_over_groups, vocab_digest, word_gram_lists

SIMHASH_VERSION = 1
WORDS_PER_CHUNK = 4096


@dataclass
class SimHashConfig:
    feature_size: int = 1024
    window: int = 1
    seed: int = 0
    vocab: str | None = None

    def validate(self, where: str) -> None:
        check_size_and_window(self.feature_size, self.window, where)


class SimHashProjection:
    def __init__(self, config: SimHashConfig) -> None:
        self.config = config
        self.vocab_path = Path(config.vocab) if config.vocab else MBERT_CASED_VOCAB
        self.feature_size = config.feature_size
        self.features_per_word = config.feature_size

    def cache_key(self) -> str:
        return (
            f"simhash-v{SIMHASH_VERSION}-g{RULE_VERSION}-{vocab_digest(self.vocab_path)}"
            f"-s{self.config.seed}-F{self.config.feature_size}"
        )

    def signatures(self, words: Sequence[str]) -> np.ndarray:
        """[len(words), F] uint8 bits: the SimHash signature of each word."""
        out = np.empty((len(words), self.config.feature_size), dtype=np.uint8)
        for first in range(0, len(words), WORDS_PER_CHUNK):
            chunk = words[first : first + WORDS_PER_CHUNK]
            out[first : first + len(chunk)] = self._signatures(word_gram_lists(chunk, self.vocab_path))
        return out

    def _signatures(self, gram_lists: list[list[bytes]]) -> np.ndarray:
        gram_index: dict[bytes, int] = {}
        gram_ids = np.fromiter(
            (gram_index.setdefault(gram, len(gram_index)) for grams in gram_lists for gram in grams), dtype=np.int64
        )
        sizes = np.fromiter((len(grams) for grams in gram_lists), dtype=np.int64, count=len(gram_lists))
        signs = gram_bits(list(gram_index), self.config.feature_size, self.config.seed).astype(np.int16) * 2 - 1
        sums = sum_over_groups(signs, gram_ids, sizes)
        first_gram = gram_ids[np.concatenate([[0], np.cumsum(sizes)[:-1]])]
        return ((sums > 0) | ((sums == 0) & (signs[first_gram] > 0))).astype(np.uint8)

    def word_features(self, words: Sequence[str]) -> WordFeatures:
        return WordFeatures.from_dense(torch.from_numpy(self.signatures(list(words)).astype(np.int8)))


@PROJECTIONS.register("simhash", SimHashConfig)
def build_simhash(config: SimHashConfig) -> SimHashProjection:
    return SimHashProjection(config)
