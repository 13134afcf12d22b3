"""Turning parsed splits into small integer tensors, once per split.

Every split becomes `word_ids` [N, S] (int32; 0 is padding) into one table of the run's unique words,
whose projection features (`WordFeatures`, int16 buckets for MinHash) are computed once; batches gather
from that table. No dense per-sample feature vector is ever built or stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pnlp_bench.data.base import Example
from pnlp_bench.models.bottleneck import PAD
from pnlp_bench.models.heads import IGNORE
from pnlp_bench.projection.base import Projection, WordFeatures


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


def featurize(
    splits: dict[str, list[Example]], projection: Projection, max_words: int, labels: LabelSpace | None = None
) -> Featurized:
    labels = labels or LabelSpace.from_train(splits["train"])
    vocabulary: dict[str, int] = {}
    for examples in splits.values():
        for example in examples:
            for word in example.words[:max_words]:
                vocabulary.setdefault(word, len(vocabulary) + 1)
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
        word_ids = torch.zeros(len(examples), max_words, dtype=torch.int32)
        tags = torch.full((len(examples), max_words), IGNORE, dtype=torch.long) if labels.tags else None
        truncated = 0
        for row, example in enumerate(examples):
            words = example.words[:max_words]
            truncated += len(example.words) > max_words
            word_ids[row, : len(words)] = torch.tensor([vocabulary[word] for word in words], dtype=torch.int32)
            if tags is not None and example.tags is not None:
                tags[row, : len(words)] = torch.tensor([tag_index.get(tag, IGNORE) for tag in example.tags[:max_words]])
        label = torch.tensor([label_index.get(example.label, IGNORE) for example in examples], dtype=torch.long)
        unseen = int((label == IGNORE).sum())
        tensors[split] = SplitTensors(word_ids=word_ids, label=label, tags=tags, truncated=truncated, unseen_labels=unseen)
    return Featurized(word_table=table, splits=tensors, labels=labels)
