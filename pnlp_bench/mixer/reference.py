"""The dense reference: pNLP-Mixer computed the way public implementations do, the baseline of `bench speed`.

Public code builds, for every sample and on the CPU, a dense float vector of (2w+1)·F counts per word
position (IMDB at S = 1024, F = 1024, w = 1: 12.6 MB per document), ships it to the device and multiplies it
with a dense `nn.Linear((2w+1)·F -> B)`. This module does exactly that, per sample, with the project's own
MinHash fingerprints, so the reference computes the same numbers as the fast path (tests/test_speed.py
checks the features against `dense_counts` and the outputs against `PNLPModel` with the same weights).

It is a generous baseline: WordPiece runs in Rust over the sample's words and the counts are built with
numpy, where public code loops in Python and hashes with SHA-256 at run time; what it keeps is the cost
that matters, dense per-sample features and a dense bottleneck.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection.minhash import MinHashProjection


class DenseReferenceFeaturizer:
    """One sample's words -> float32 [S, (2w+1)·F]: row t concatenates the counting vectors of words t-w … t+w."""

    def __init__(self, projection: MinHashProjection, window: int, max_length: int) -> None:
        self.projection = projection
        self.window = window
        self.max_length = max_length
        self.feature_size = projection.feature_size
        self.in_dim = (2 * window + 1) * self.feature_size

    def __call__(self, words: Sequence[str]) -> torch.Tensor:
        words = list(words[: self.max_length])
        length, window, feature_size = self.max_length, self.window, self.feature_size
        # `window` zero rows on each side stand for the positions outside the sentence.
        counts = np.zeros(((length + 2 * window) * feature_size,), dtype=np.float32)
        if words:
            buckets = (self.projection.word_fingerprints(words) % np.uint64(feature_size)).astype(np.int64)
            rows = np.arange(len(words)) + window
            flat = (rows[:, None] * feature_size + buckets).ravel()
            counts += np.bincount(flat, minlength=counts.size).astype(np.float32)
        counts = counts.reshape(length + 2 * window, feature_size)
        dense = np.concatenate([counts[slot : slot + length] for slot in range(2 * window + 1)], axis=1)
        return torch.from_numpy(dense)

    def batch(self, samples: Sequence[Sequence[str]]) -> torch.Tensor:
        """[len(samples), S, (2w+1)·F], stacked from per-sample tensors like a DataLoader's default collate."""
        return torch.stack([self(words) for words in samples])


class DenseReferenceModel(nn.Module):
    """pNLP-Mixer with a dense bottleneck: `nn.Linear` over the dense counts, then the same backbone and head."""

    def __init__(self, bottleneck: nn.Linear, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        self.backbone = backbone
        self.head = head

    @classmethod
    def from_fast(cls, model: PNLPModel) -> "DenseReferenceModel":
        """The same network with the same weights (copied: training one does not move the other)."""
        fast = model.bottleneck
        linear = nn.Linear(fast.in_dim, fast.out_dim)
        with torch.no_grad():
            linear.weight.copy_(fast.weight.T)
            linear.bias.copy_(fast.bias)
        linear.to(device=fast.weight.device, dtype=fast.weight.dtype)
        return cls(linear, copy.deepcopy(model.backbone), copy.deepcopy(model.head))

    def forward(self, features: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None = None) -> dict:
        """features: [B, S, (2w+1)·F] dense counts (`values` is unused: dense counts already carry weights)."""
        return self.head(self.backbone(self.bottleneck(features), mask), mask)
