"""A trainable word-embedding input: the control of results/fidelity.md, and a plain baseline for users.

Not a projection of the paper. Each word is one bucket: its row in a vocabulary of the training words seen at
least `min_count` times (most frequent first, ties in order of first occurrence), bucket 0 for every other
word (the unknown-word vector, trained on the rare training words that map to it). The bottleneck over one
bucket per word is then a word-embedding table of F rows (with w > 0, the neighbours' embeddings enter
through their own slices of it), so projection=embedding with the same backbone and head isolates what the
MinHash projection contributes.

The bottleneck starts as an embedding table, N(0, init_std²) per entry (`run.build_model`). The scale matters
twice: an LSTM (no LayerNorm in front) needs inputs of about unit size (with the bottleneck's counting-vector
init, bound 1/sqrt((2w+1)·F), it sat at the majority intent for 8 epochs on ATIS), while Adam moves each entry
by about lr per step whatever its size, so a row of size 1 learns ~50x slower relative to itself than a small
one: behind the mixer's LayerNorm, 0.02 (the usual transformer embedding init) is the fair start.

The vocabulary is fitted on the training split when the data is featurized (`fit`), is part of the feature
cache's key through the data's key, and travels in the checkpoint (`state` / `load_state`), so `bench predict`
maps new words exactly as training did.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pnlp_bench.mixer.projection.base import PROJECTIONS, WordFeatures, check_size_and_window
from pnlp_bench.core.registry import ConfigError

UNKNOWN = 0


@dataclass
class EmbeddingConfig:
    feature_size: int = 16384
    window: int = 0
    min_count: int = 2
    lowercase: bool = False
    init_std: float = 1.0  # N(0, init_std^2) embedding rows: 1 for an LSTM, 0.02 behind the mixer's LayerNorm

    def validate(self, where: str) -> None:
        check_size_and_window(self.feature_size, self.window, where)
        if self.feature_size < 2:
            raise ConfigError(f"{where}.feature_size must be >= 2 (the unknown-word row and one word), got {self.feature_size}")
        if self.init_std <= 0:
            raise ConfigError(f"{where}.init_std must be positive, got {self.init_std}")
        if self.min_count < 1:
            raise ConfigError(f"{where}.min_count must be >= 1, got {self.min_count}")


class EmbeddingProjection:
    features_per_word = 1

    def __init__(self, config: EmbeddingConfig) -> None:
        self.config = config
        self.feature_size = config.feature_size
        self.vocabulary: dict[str, int] | None = None

    def normalise(self, word: str) -> str:
        return word.lower() if self.config.lowercase else word

    def fit(self, train_words: Sequence[str]) -> None:
        """The vocabulary of the training words: up to F - 1 of those seen at least min_count times."""
        counts = Counter(map(self.normalise, train_words))
        kept = [word for word, count in counts.most_common() if count >= self.config.min_count]
        self.vocabulary = {word: row for row, word in enumerate(kept[: self.feature_size - 1], start=1)}

    def state(self) -> dict:
        return {"vocabulary": list(self.vocabulary or {})}

    def load_state(self, state: dict) -> None:
        self.vocabulary = {word: row for row, word in enumerate(state["vocabulary"], start=1)}

    def cache_key(self) -> str:
        # The fitted vocabulary follows from the training data, which the feature cache's data key names.
        options = f"F{self.config.feature_size}-m{self.config.min_count}-l{int(self.config.lowercase)}"
        return "embedding-v1-" + hashlib.sha256(options.encode()).hexdigest()[:12]

    def word_features(self, words: Sequence[str]) -> WordFeatures:
        if self.vocabulary is None:
            raise ConfigError("projection=embedding: the vocabulary is not fitted (featurize the training split first)")
        rows = [self.vocabulary.get(self.normalise(word), UNKNOWN) for word in words]
        dtype = torch.int16 if self.feature_size <= torch.iinfo(torch.int16).max else torch.int32
        return WordFeatures(indices=torch.tensor(rows, dtype=dtype).reshape(len(rows), 1))


@PROJECTIONS.register("embedding", EmbeddingConfig)
def build_embedding(config: EmbeddingConfig) -> EmbeddingProjection:
    return EmbeddingProjection(config)
