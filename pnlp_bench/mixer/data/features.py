"""Turning parsed splits into small integer tensors, once per split.

Every split becomes `word_ids` [N, S] (int32; 0 is padding) into one table of the run's unique words,
whose projection features (`WordFeatures`, int16 buckets for MinHash) are computed once; batches gather
from that table. No dense per-sample feature vector is ever built or stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from pathlib import Path

import numpy as np
import torch

from pnlp_bench.core.atomic import save_torch_atomic
from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.models.bottleneck import PAD
from pnlp_bench.mixer.models.heads import IGNORE
from pnlp_bench.core.paths import cache_dir
from pnlp_bench.mixer.projection.base import Projection, WordFeatures

# Bump when the featurized layout or the meaning of its arrays changes (invalidates the disk cache).
FEATURES_VERSION = 1


@dataclass
class LabelSpace:
    labels: list[str]
    tags: list[str] = field(default_factory=list)

    @classmethod
    def from_train(cls, examples: list[Example]) -> "LabelSpace":
        labels = sorted({example.label for example in examples})
        tags = sorted({tag for example in examples for tag in (example.tags or [])} | {"O"})
        has_tags = any(example.tags is not None for example in examples)
        return cls(labels=labels, tags=tags if has_tags else [])


@dataclass
class SplitTensors:
    word_ids: torch.Tensor  # [N, S] int32, 0 = padding
    label: torch.Tensor  # [N] int64, IGNORE when the label is unseen in training
    tags: torch.Tensor | None  # [N, S] int64 with IGNORE at padding and on rows without tags
    truncated: int
    unseen_labels: int = 0  # eval/test rows whose label never occurs in training: always counted wrong

    def __len__(self) -> int:
        return self.word_ids.shape[0]


@dataclass
class Featurized:
    word_table: WordFeatures  # row 0 is padding (PAD everywhere)
    splits: dict[str, SplitTensors]
    labels: LabelSpace

    @property
    def device(self) -> torch.device:
        return self.word_table.indices.device

    def to(self, device: torch.device | str) -> "Featurized":
        """A copy whose word table and splits live on `device`. The GPU path keeps them resident there, so
        a training step gathers its batch on the device and nothing crosses the host link per step."""
        move = lambda tensor: None if tensor is None else tensor.to(device)  # noqa: E731
        table = WordFeatures(indices=move(self.word_table.indices), values=move(self.word_table.values))
        splits = {
            name: replace(split, word_ids=move(split.word_ids), label=move(split.label), tags=move(split.tags))
            for name, split in self.splits.items()
        }
        return Featurized(word_table=table, splits=splits, labels=self.labels)

    def batch(self, split: str, rows: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        tensors = self.splits[split]
        word_ids = tensors.word_ids[rows].long()
        batch = {
            "features": self.word_table.indices[word_ids].to(device, non_blocking=True),
            "mask": (word_ids > 0).to(device),
            "label": tensors.label[rows].to(device),
        }
        if self.word_table.values is not None:
            batch["values"] = self.word_table.values[word_ids].to(device)
        if tensors.tags is not None:
            batch["tags"] = tensors.tags[rows].to(device)
        return batch


def kept_words(example: Example, max_length: int) -> list[str]:
    # No copy when nothing is cut (most documents): slicing 25k long lists is measurable.
    return example.words if len(example.words) <= max_length else example.words[:max_length]


def scatter_rows(flat: np.ndarray, lengths: np.ndarray, width: int, fill: int, dtype) -> np.ndarray:
    """[len(lengths), width] array whose row r starts with the next lengths[r] values of `flat` (row-major)."""
    out = np.full((len(lengths), width), fill, dtype=dtype)
    out[np.arange(width)[None, :] < lengths[:, None]] = flat
    return out


def fit_projection(splits: dict[str, list[Example]], projection: Projection, max_length: int) -> None:
    """A projection learnt from the training words (projection=embedding) fits on them; others have no `fit`."""
    fit = getattr(projection, "fit", None)
    if fit is not None:
        fit(list(chain.from_iterable(kept_words(example, max_length) for example in splits["train"])))


def featurize(
    splits: dict[str, list[Example]],
    projection: Projection,
    max_length: int,
    labels: LabelSpace | None = None,
    fit: bool = True,
) -> Featurized:
    """Word ids per split into one table of unique words, whose features the projection computes once.

    Vectorised over the flattened words of every split: one `dict.fromkeys` pass gives the unique words
    in first-occurrence order (the table's row order), one `map` over the flat words their ids, and a
    boolean mask scatters them into the padded [N, S] arrays; no per-example loop builds tensors.

    A trained model's splits (`bench eval`) pass its `labels` and `fit=False`: the projection keeps the state
    it was trained with, and labels or tags the model never saw map to IGNORE (counted in `unseen_labels`).
    """
    labels = labels or LabelSpace.from_train(splits["train"])
    kept = {split: [kept_words(example, max_length) for example in examples] for split, examples in splits.items()}
    flat_words = {split: list(chain.from_iterable(rows)) for split, rows in kept.items()}
    vocabulary: dict[str, int] = dict.fromkeys(chain.from_iterable(flat_words.values()))  # type: ignore[arg-type]
    vocabulary.update(zip(vocabulary, range(1, len(vocabulary) + 1)))
    if fit:
        fit_projection(splits, projection, max_length)
    features = projection.word_features(list(vocabulary))
    padding = torch.full((1, features.indices.shape[1]), PAD, dtype=features.indices.dtype)
    values = None
    if features.values is not None:
        values = torch.cat([torch.zeros(1, features.values.shape[1], dtype=features.values.dtype), features.values])
    table = WordFeatures(indices=torch.cat([padding, features.indices]), values=values)
    label_index = {label: index for index, label in enumerate(labels.labels)}
    tag_index = {tag: index for index, tag in enumerate(labels.tags)}
    tensors = {}
    for split, examples in splits.items():
        lengths = np.fromiter(map(len, kept[split]), dtype=np.int64, count=len(examples))
        ids = np.fromiter(map(vocabulary.__getitem__, flat_words[split]), dtype=np.int32, count=len(flat_words[split]))
        word_ids = scatter_rows(ids, lengths, max_length, 0, np.int32)
        tags = None
        if labels.tags:
            # Cut to the kept words, so tags never sit where there is no word (the cache relies on it).
            tag_rows = [
                example.tags[: len(words)] if example.tags is not None else [] for example, words in zip(examples, kept[split])
            ]
            flat_tags = list(chain.from_iterable(tag_rows))
            tag_ids = np.fromiter(map(tag_index.get, flat_tags, repeat(IGNORE)), dtype=np.int64, count=len(flat_tags))
            tag_lengths = np.fromiter(map(len, tag_rows), dtype=np.int64, count=len(examples))
            tags = torch.from_numpy(scatter_rows(tag_ids, tag_lengths, max_length, IGNORE, np.int64))
        label = np.fromiter(
            map(label_index.get, (example.label for example in examples), repeat(IGNORE)), dtype=np.int64, count=len(examples)
        )
        truncated = int(sum(len(example.words) > max_length for example in examples))
        tensors[split] = SplitTensors(
            word_ids=torch.from_numpy(word_ids),
            label=torch.from_numpy(label),
            tags=tags,
            truncated=truncated,
            unseen_labels=int((label == IGNORE).sum()),
        )
    return Featurized(word_table=table, splits=tensors, labels=labels)


def featurize_cached(
    splits: dict[str, list[Example]], data_key: str | None, projection: Projection, max_length: int
) -> tuple[Featurized, bool]:
    """`featurize`, read from or written to the disk cache; returns (featurized, whether it was read).

    Keyed by the data's cache key (source files, loader version, split options, train_limit), the
    projection's cache key and max_length. Stored compactly: each split's non-padding word ids flat with
    the row lengths (IMDB at S = 1024: 72 MB instead of over 200 MB of padded rows). No key (data not from a cached
    loader), no cache.
    """
    if data_key is None:
        return featurize(splits, projection, max_length), False
    digest = hashlib.sha256(f"v{FEATURES_VERSION}|{data_key}|{projection.cache_key()}|S{max_length}".encode()).hexdigest()[:20]
    path = cache_dir() / "features" / f"{digest}.pt"
    if path.exists():
        fit_projection(splits, projection, max_length)  # the cached table was built with this same fit
        return load_featurized(path, max_length), True
    data = featurize(splits, projection, max_length)
    save_featurized(data, path)
    return data, False


def save_featurized(data: Featurized, path: Path) -> None:
    payload: dict = {
        "indices": data.word_table.indices,
        "values": data.word_table.values,
        "labels": data.labels.labels,
        "tags": data.labels.tags,
        "splits": {},
    }
    for split, tensors in data.splits.items():
        present = tensors.word_ids > 0
        entry = {
            "lengths": present.sum(1).to(torch.int32),
            "word_ids": tensors.word_ids[present],
            "label": tensors.label,
            "truncated": tensors.truncated,
            # Tags only ever sit under words (IGNORE elsewhere), so the word positions carry them exactly.
            "tags": None if tensors.tags is None else tensors.tags[present],
        }
        payload["splits"][split] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomic(path, payload)


def load_featurized(path: Path, max_length: int) -> Featurized:
    payload = torch.load(path, weights_only=True)
    splits = {}
    for split, entry in payload["splits"].items():
        word_ids = scatter_rows(entry["word_ids"].numpy(), entry["lengths"].numpy(), max_length, 0, np.int32)
        tags = None
        if entry["tags"] is not None:
            tags = torch.from_numpy(scatter_rows(entry["tags"].numpy(), entry["lengths"].numpy(), max_length, IGNORE, np.int64))
        splits[split] = SplitTensors(torch.from_numpy(word_ids), entry["label"], tags, int(entry["truncated"]))
    table = WordFeatures(indices=payload["indices"], values=payload["values"])
    return Featurized(word_table=table, splits=splits, labels=LabelSpace(payload["labels"], payload["tags"]))
