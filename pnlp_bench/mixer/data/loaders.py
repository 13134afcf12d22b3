"""Every pNLP-Mixer data set's loader, registered by importing it here, and `load_data`, which picks one by
name and applies the budget's limits. (The loaders import `base.py`; nothing below imports this module.)"""

from __future__ import annotations

import random

from pnlp_bench.mixer.data import atis, hyperpartisan, imdb, mtop, mtop_aligned, multiatis  # noqa: F401  (registration)
from pnlp_bench.mixer.data.base import LOADERS, DataConfig, Example, LoadedData


def load_data(config: DataConfig) -> LoadedData:
    builder, _ = LOADERS._lookup(config.name)
    loaded = builder(config)
    for split, limit in (("train", config.train_limit), ("eval", config.eval_limit), ("test", config.test_limit)):
        if limit:
            loaded.splits[split] = subset_per_language(loaded.splits[split], limit)
            loaded.report[f"{split}_limit_per_language"] = limit
            if loaded.key is not None:
                loaded.key += f"-{split}{limit}"
    return loaded


def subset_per_language(examples: list[Example], limit: int) -> list[Example]:
    """A fixed random subset (seed 0, file order kept) of at most `limit` examples per language."""
    by_language: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_language.setdefault(example.lang, []).append(index)
    keep: list[int] = []
    for indices in by_language.values():
        keep.extend(indices if len(indices) <= limit else random.Random(0).sample(indices, limit))
    return [examples[index] for index in sorted(keep)]
