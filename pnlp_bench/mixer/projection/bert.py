"""Frozen mBERT input embeddings as a projection: the "BERT embeddings" row of Table 1.

The reading implemented here: a word is split into mBERT-cased WordPiece pieces (the tokenizer every
projection of this project uses), and its features are the mean of those pieces' rows of mBERT's input
(word-piece) embedding matrix, F = 768 dense values, taken as they are: no position or segment
embedding, no LayerNorm, no encoder layer. A word that yields no piece gets the `[UNK]` row; a word that
WordPiece cannot split yields `[UNK]` and so gets the `[UNK]` row too. The bottleneck sees the vector
densely: indices 0..F-1 with the embedding as values (float32).

The weights come from `transformers` (`BertModel.from_pretrained(config.weights)`, a hub name or a local
folder); with `download: false` only local files are used (the Hugging Face cache or a folder). Without
them, building the projection stops with one line saying so; results tables mark the row "not run here".
Tests pass a small `BertModel` built from a `BertConfig` instead (`BertProjection(config, model=...)`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from pnlp_bench.core.files import DataError
from pnlp_bench.core.paths import MBERT_CASED_VOCAB
from pnlp_bench.mixer.projection.base import PROJECTIONS, WordFeatures
from pnlp_bench.mixer.projection.minhash import vocab_digest, vocabulary
from pnlp_bench.mixer.projection.tokenizer import split_words
from pnlp_bench.core.registry import ConfigError

MBERT = "bert-base-multilingual-cased"


@dataclass
class BertProjectionConfig:
    feature_size: int = 768
    window: int = 1
    weights: str = MBERT  # a hub name or a local folder with the weights
    download: bool = False  # false: local files only (the Hugging Face cache or a folder); true: may fetch them
    vocab: str | None = None  # the WordPiece vocabulary; null is mBERT-cased, which the weights need

    def validate(self, where: str) -> None:
        if self.feature_size < 1:
            raise ConfigError(f"{where}.feature_size must be positive, got {self.feature_size}")
        if self.window < 0:
            raise ConfigError(f"{where}.window must be >= 0, got {self.window}")


def load_bert(weights: str, download: bool) -> Any:
    """`BertModel.from_pretrained(weights)`, from local files only unless `download`; one-line DataError otherwise."""
    try:
        from transformers import BertModel
    except ImportError as error:
        raise DataError(f"projection=bert needs the `transformers` package ({error})") from None
    try:
        return BertModel.from_pretrained(weights, local_files_only=not download)
    except (OSError, ValueError) as error:
        how = "set projection.download=true on a machine with internet" if not download else "check the name or path"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"projection=bert: the {weights!r} weights are not available here ({first_line}); {how}, "
            "or point projection.weights at a local folder"
        ) from None


class BertProjection:
    def __init__(self, config: BertProjectionConfig, model: Any = None) -> None:
        self.config = config
        self.vocab_path = Path(config.vocab) if config.vocab else MBERT_CASED_VOCAB
        model = model if model is not None else load_bert(config.weights, config.download)
        # Only the input embedding matrix is kept; the rest of the model is dropped.
        self.embeddings = model.get_input_embeddings().weight.detach().float().cpu().clone()
        vocab_size, hidden = self.embeddings.shape
        pieces = vocabulary(self.vocab_path)
        if hidden != config.feature_size:
            raise ConfigError(f"projection.feature_size is {config.feature_size} but the model's embeddings have {hidden}")
        if len(pieces) > vocab_size:
            raise ConfigError(
                f"projection.vocab has {len(pieces)} entries but the model's embedding matrix only {vocab_size} rows"
            )
        self.unk_id = pieces.index("[UNK]")
        self.feature_size = hidden
        self.features_per_word = hidden
        self._digest = hashlib.sha256(self.embeddings.numpy().tobytes()).hexdigest()[:16]

    def cache_key(self) -> str:
        return f"bert-{Path(self.config.weights).name}-{self._digest}-{vocab_digest(self.vocab_path)}"

    def vectors(self, words: Sequence[str]) -> torch.Tensor:
        """[len(words), F] float32: the mean of each word's piece embeddings."""
        piece_ids = [ids or [self.unk_id] for ids in split_words(list(words), str(self.vocab_path))]
        flat = torch.from_numpy(np.fromiter((piece for ids in piece_ids for piece in ids), dtype=np.int64))
        sizes = torch.tensor([len(ids) for ids in piece_ids], dtype=torch.long)
        offsets = torch.zeros_like(sizes)
        offsets[1:] = sizes.cumsum(0)[:-1]
        return F.embedding_bag(flat, self.embeddings, offsets, mode="mean")

    def word_features(self, words: Sequence[str]) -> WordFeatures:
        return WordFeatures.from_dense(self.vectors(words))


@PROJECTIONS.register("bert", BertProjectionConfig)
def build_bert(config: BertProjectionConfig) -> BertProjection:
    return BertProjection(config)
