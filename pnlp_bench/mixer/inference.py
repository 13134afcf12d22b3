"""Single-utterance inference for a trained pNLP-Mixer: the same maths as `PNLPModel.forward`, with less work.

`PNLPModel.forward` runs every layer over all S positions because training batches are padded to S. For one
utterance of n words (n < S) three things are known in advance, and `MixerPredictor` uses them:

1. Words repeat across requests, and the bottleneck is linear in each neighbour's counts, so each word's
   2w+1 bottleneck contributions (one per window slot) are computed once and kept in an LRU cache. The
   bottleneck output of position t is then bias + sum over slots of the cached vector of word t+k-w.
2. Rows n+w … S-1 of the bottleneck output are the bias alone (no word reaches them), so they are one and
   the same row, and in the first token-mixing Linear(S -> D_S) they contribute LayerNorm(bias) times the
   sum of the weight columns n+w … S-1: that row enters once, against a precomputed suffix sum of columns.
3. The heads read positions 0 … n-1 only (the tagger per word; the pooling masks padding to weight 0), and
   after the last token mixing every position is independent. So the last block's second token-mixing
   Linear(D_S -> S) computes n output rows, its channel mixing runs on n rows, and the head on n rows.

Everything else is the model's own weights and functions. The results equal `PNLPModel.forward` up to float
rounding (summation order), which tests/test_inference.py checks on random models of every head, window
and depth.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pnlp_bench.mixer.data.features import LabelSpace
from pnlp_bench.mixer.models.bottleneck import PAD
from pnlp_bench.mixer.models.mixer import Mixer, MixerBlock
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection.base import Projection
from pnlp_bench.core.registry import ConfigError


def padded_inputs(projection: Projection, words: Sequence[str], seq_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One utterance as training batches it (features, mask, values), padded to S: what `PNLPModel` takes."""
    words = list(words)[:seq_len]
    features = projection.word_features(words)
    width = features.indices.shape[1]
    indices = torch.full((1, seq_len, width), PAD, dtype=features.indices.dtype)
    indices[0, : len(words)] = features.indices
    values = None
    if features.values is not None:
        values = torch.zeros(1, seq_len, width, dtype=features.values.dtype)
        values[0, : len(words)] = features.values
    mask = torch.zeros(1, seq_len, dtype=torch.bool)
    mask[0, : len(words)] = True
    return indices, mask, values


def padded_batch(
    projection: Projection, word_lists: Sequence[Sequence[str]], seq_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Several utterances as one padded batch (features, mask, values) of [B, S, k]: row b is what
    `padded_inputs` gives for utterance b; the projection sees each distinct word of the batch once."""
    word_lists = [list(words)[:seq_len] for words in word_lists]
    unique = list(dict.fromkeys(word for words in word_lists for word in words))
    features = projection.word_features(unique)
    row_of = {word: row for row, word in enumerate(unique)}
    batch, width = len(word_lists), features.indices.shape[1]
    indices = torch.full((batch, seq_len, width), PAD, dtype=features.indices.dtype)
    values = None if features.values is None else torch.zeros(batch, seq_len, width, dtype=features.values.dtype)
    mask = torch.zeros(batch, seq_len, dtype=torch.bool)
    for row, words in enumerate(word_lists):
        rows = torch.tensor([row_of[word] for word in words], dtype=torch.long)
        indices[row, : len(words)] = features.indices[rows]
        if values is not None:
            values[row, : len(words)] = features.values[rows]
        mask[row, : len(words)] = True
    return indices, mask, values


class MixerPredictor:
    """Predictions for one utterance at a time from a trained pNLP-Mixer (MLP-Mixer backbone, any head)."""

    def __init__(self, model: PNLPModel, projection: Projection, seq_len: int, cache_words: int = 50_000) -> None:
        if not isinstance(model.backbone, Mixer):
            raise ConfigError(f"MixerPredictor needs the mixer backbone, got {type(model.backbone).__name__}")
        self.projection = projection
        self.seq_len = seq_len
        self.cache_words = cache_words
        self.model = model.eval()
        bottleneck = self.model.bottleneck
        self.window = bottleneck.window
        self.feature_size = bottleneck.feature_size
        self.dim = bottleneck.out_dim
        self._weight = bottleneck.weight.detach().float()
        # Each block's parameters, laid out for the [S, B] orientation the loop in `hidden` uses.
        self._layers = [self._layer_parameters(block) for block in self.model.backbone.blocks]
        self._first_weight = self._layers[0][1]  # W1 of the first block, [D_S, S]
        if self._first_weight.shape[1] != seq_len:
            raise ConfigError(f"MixerPredictor: the model mixes over S = {self._first_weight.shape[1]} positions, "
                              f"got seq_len {seq_len}")
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.bias = bottleneck.bias.detach()
        # Suffix sums of the first token-mixing weight: tail[:, r] = sum of its columns r … S-1.
        self._tail = self._first_weight.float().flip(1).cumsum(1).flip(1)
        self._first_weights: dict[int, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _layer_parameters(block: MixerBlock) -> tuple:
        token_first, token_activation, token_second = block.token_mixing
        channel_first, channel_activation, channel_second = block.channel_mixing
        for activation in (token_activation, channel_activation):
            if not isinstance(activation, nn.GELU) or activation.approximate != "none":
                raise ConfigError(f"MixerPredictor expects the mixer's exact GELU, got {activation}")

        def norm(layer: nn.LayerNorm) -> tuple:
            return (layer.normalized_shape, layer.weight.detach(), layer.bias.detach(), layer.eps)

        return (
            norm(block.token_norm),
            token_first.weight.detach(), token_first.bias.detach()[:, None],  # W1 [D_S, S], bias per row
            token_second.weight.detach(), token_second.bias.detach()[:, None],  # W2 [S, D_S]
            norm(block.channel_norm),
            channel_first.weight.detach().t(), channel_first.bias.detach(),  # x [rows, B] @ W^T
            channel_second.weight.detach().t(), channel_second.bias.detach(),
        )

    # ------------------------------------------------------------ word vectors

    def _compute_word_vectors(self, words: list[str]) -> torch.Tensor:
        """[m, 2w+1, B]: slot j of word v is sum over its buckets b of value * weight[j·F + b]."""
        features = self.projection.word_features(words)
        indices = features.indices.long()
        values = features.values
        slots = 2 * self.window + 1
        size = self.feature_size
        if values is not None and indices.shape[1] == size:  # dense projections: a plain matmul per slot
            dense = values.float()
            return torch.stack([dense @ self._weight[j * size : (j + 1) * size] for j in range(slots)], dim=1)
        # One bag per (word, slot) over the word's buckets shifted into the slot's block of rows; PAD
        # entries point at row 0 with weight 0.
        active = indices != PAD
        weights = active.float() if values is None else values.float() * active
        shifted = indices.clamp(min=0)[:, None, :] + size * torch.arange(slots)[None, :, None]
        bags = F.embedding_bag(shifted.reshape(-1, indices.shape[1]), self._weight, mode="sum",
                               per_sample_weights=weights.repeat_interleave(slots, dim=0))
        return bags.view(len(words), slots, self.dim)

    def word_vectors(self, words: Sequence[str]) -> torch.Tensor:
        """[n, 2w+1, B] from the LRU cache (misses computed together)."""
        cache = self._cache
        missing = list(dict.fromkeys(word for word in words if word not in cache))
        if missing:
            self.misses += len(missing)
            for start in range(0, len(missing), 4096):
                chunk = missing[start : start + 4096]
                for word, vector in zip(chunk, self._compute_word_vectors(chunk)):
                    cache[word] = vector
            while len(cache) > self.cache_words:
                cache.popitem(last=False)
        self.hits += len(words) - len(missing)
        rows = []
        for word in words:
            vector = cache.get(word)
            if vector is None:  # evicted within this very call (an utterance longer than the cache)
                vector = self._compute_word_vectors([word])[0]
            else:
                cache.move_to_end(word)
            rows.append(vector)
        return torch.stack(rows)

    def clear_cache(self) -> None:
        self._cache.clear()

    # ------------------------------------------------------------ forward

    def bottleneck_rows(self, vectors: torch.Tensor, rows: int) -> torch.Tensor:
        """Bottleneck output of positions 0 … rows-1 ([rows, B]); later positions are the bias alone."""
        n = vectors.shape[0]
        out = self.bias.expand(rows, self.dim).clone()
        for slot in range(2 * self.window + 1):
            offset = slot - self.window  # position t reads word t + offset in this slot
            start, stop = max(0, -offset), min(rows, n - offset)
            if stop > start:
                out[start:stop] += vectors[start + offset : stop + offset, slot]
        return out

    def first_token_weight(self, known: int) -> torch.Tensor:
        """The first token-mixing weight for an input whose rows `known` … S-1 are all the same row:
        columns 0 … known-1, then (if known < S) one column holding the sum of the rest, which multiplies
        that shared row once. Cached per `known` (at most S + 1 of them)."""
        weight = self._first_weights.get(known)
        if weight is None:
            weight = self._first_weight[:, :known]
            if known < self.seq_len:
                weight = torch.cat([weight, self._tail[:, known : known + 1]], dim=1)
            weight = self._first_weights[known] = weight.contiguous()
        return weight

    def hidden(self, words: Sequence[str]) -> torch.Tensor:
        """The backbone's output at the utterance's n positions ([n, B]); n >= 1 words after truncation to S."""
        words = list(words)[: self.seq_len]
        n, seq_len = len(words), self.seq_len
        known = min(n + self.window, seq_len)  # rows from here on are the bias alone
        x = self.bottleneck_rows(self.word_vectors(words), seq_len)
        last = len(self._layers) - 1
        # Token mixing in the [S, B] orientation: W1 [D_S, S] @ LN(x) [S, B], so no transposes are needed.
        for index, (token_norm, w1, b1, w2, b2, channel_norm, c1, d1, c2, d2) in enumerate(self._layers):
            if index == 0:  # the rows known … S-1 enter the first token mixing once, through the tail sums
                rows = min(known + 1, seq_len)
                mixed = torch.addmm(b1, self.first_token_weight(known), F.layer_norm(x[:rows], *token_norm))
            else:
                mixed = torch.addmm(b1, w1, F.layer_norm(x, *token_norm))
            if index == last:  # only the n word rows are read from here on
                x = torch.addmm(x[:n], w2[:n], F.gelu(mixed)).add_(b2[:n])
            else:
                x = torch.addmm(x, w2, F.gelu(mixed)).add_(b2)
            hidden = torch.addmm(d1, F.layer_norm(x, *channel_norm), c1)
            x = torch.addmm(x, F.gelu(hidden), c2).add_(d2)
        return x

    @torch.inference_mode()
    def outputs(self, words: Sequence[str]) -> dict[str, torch.Tensor]:
        """The head's outputs for one utterance, batch 1, over its n word positions (what `predict` reads)."""
        if not words:
            raise ValueError("MixerPredictor needs at least one word")
        x = self.hidden(words)
        mask = torch.ones(1, x.shape[0], dtype=torch.bool)
        return self.model.head(x[None], mask)

    def predict(self, words: Sequence[str]) -> dict[str, torch.Tensor]:
        """The head's predictions (`label`, and `tags` for the n words where the head tags)."""
        return self.model.head.predict(self.outputs(words))


def predictor_for(model: PNLPModel, projection: Projection, seq_len: int) -> Callable[[list[str]], dict[str, torch.Tensor]]:
    """The head's predictions for one utterance: `MixerPredictor` for the MLP-Mixer, else the padded model."""
    if isinstance(model.backbone, Mixer):
        return MixerPredictor(model, projection, seq_len).predict

    def padded(words: list[str]) -> dict[str, torch.Tensor]:
        features, mask, values = padded_inputs(projection, words, seq_len)
        with torch.inference_mode():
            outputs = model(features, mask, values)
        return model.head.predict(outputs, mask)

    return padded


class TextPredictor:
    """What `bench predict` prints for each utterance (a list of words): its label, the label's probability
    (softmax of the label logits), the `top_k` likeliest labels as [label, probability] (when top_k > 0) and
    the per-word tags of heads that tag. `one` serves a single utterance (through `MixerPredictor` for the
    MLP-Mixer); `many` runs a batch through the padded model. Both give the same labels and tags; the
    probabilities agree up to float rounding (summation order)."""

    def __init__(self, model: PNLPModel, projection: Projection, seq_len: int, labels: LabelSpace, top_k: int = 0) -> None:
        self.model, self.projection, self.seq_len, self.labels = model.eval(), projection, seq_len, labels
        self.top_k = min(top_k, len(labels.labels))
        self.fast = MixerPredictor(self.model, projection, seq_len) if isinstance(model.backbone, Mixer) else None

    def one(self, words: Sequence[str]) -> dict[str, Any]:
        words = list(words)[: self.seq_len]
        if self.fast is None:
            return self.many([words])[0]
        outputs = self.fast.outputs(words)
        head = self.model.head
        return self.described(words, head.predict(outputs), head.label_probabilities(outputs), 0)

    @torch.inference_mode()
    def many(self, word_lists: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
        word_lists = [list(words)[: self.seq_len] for words in word_lists]
        features, mask, values = padded_batch(self.projection, word_lists, self.seq_len)
        outputs = self.model(features, mask, values)
        predicted = self.model.head.predict(outputs, mask)
        probabilities = self.model.head.label_probabilities(outputs)
        return [self.described(words, predicted, probabilities, row) for row, words in enumerate(word_lists)]

    def described(self, words: list[str], predicted: dict[str, torch.Tensor], probabilities: torch.Tensor, row: int) -> dict[str, Any]:
        label = int(predicted["label"][row])
        result: dict[str, Any] = {"label": self.labels.labels[label], "probability": float(probabilities[row, label])}
        if self.top_k:
            best = probabilities[row].topk(self.top_k)
            result["top_k"] = [[self.labels.labels[int(index)], float(value)] for value, index in zip(best.values, best.indices)]
        if "tags" in predicted and self.labels.tags:
            tags = predicted["tags"][row, : len(words)].tolist()
            result["tags"] = [[word, self.labels.tags[tag]] for word, tag in zip(words, tags)]
        return result
