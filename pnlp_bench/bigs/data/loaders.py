"""Every BiGS text task's loader, registered by importing it here, and `load_text_data`, which picks one by
name and applies the limits. (The loaders import `text_tasks.py`; nothing below imports this module.)"""

from __future__ import annotations

import random

from pnlp_bench.bigs.data import corpus, documents, glue, scrolls  # noqa: F401  (registration)
from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig, TextExample, TextTask
from pnlp_bench.core.files import DataError


def is_text_data(name: str) -> bool:
    return name in TEXT_DATA.names()


def random_subset(examples: list[TextExample], limit: int, seed: int) -> list[TextExample]:
    """At most `limit` examples drawn at random with `seed` (file order kept), as pNLP's `subset_per_language`."""
    if len(examples) <= limit:
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[index] for index in keep]


def load_text_data(config: TextDataConfig) -> TextTask:
    """Parse the data set `config.name`, then apply the limits: train a random subset, the evaluation splits their first rows."""
    task = TEXT_DATA.build(config.name, config.options, "data.options", config=config)
    if config.train_limit:
        available = len(task.splits["train"])
        task.splits["train"] = random_subset(task.splits["train"], config.train_limit, config.subset_seed)
        task.report["train_subset"] = {"limit": config.train_limit, "seed": config.subset_seed, "of": available}
    if config.eval_limit:
        for split in task.eval_splits:
            task.splits[split] = task.splits[split][: config.eval_limit]
    for split, examples in task.splits.items():
        if not examples:
            raise DataError(f"{config.name}: the {split} split is empty")
    task.report["examples"] = {split: len(examples) for split, examples in task.splits.items()}
    return task
