"""What every loader returns, the typed data config, and the Hugging Face `datasets` cache of parsed splits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pnlp_bench.core.paths import cache_dir
from pnlp_bench.core.registry import ConfigError, Registry

SPLITS = ("train", "eval", "test")


@dataclass
class Example:
    uid: str
    lang: str
    words: list[str]
    label: str
    tags: list[str] | None = None


@dataclass
class DataConfig:
    """Fields shared by every data set; a loader reads its own options from `options`."""

    name: str
    # a folder holding the data set in its release layout (each loader's doc); null searches BENCH_DATA_DIR,
    # ./data and ../shared/data
    root: str | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    max_length: int = 64
    head: str = "intent_slots"
    head_options: dict[str, Any] = field(default_factory=dict)
    monitor: str = "exact_match"
    # The eval language whose `monitor` selects the best epoch; null: the average over `languages`
    # (a model trained on pooled languages can be selected on one of them)
    monitor_language: str | None = None
    download: bool = False  # true: fetch the original release when no local copy is found
    # Reduced budgets: at most this many examples per language and split, a fixed random subset
    # (the same for every run and seed), so a CPU table can say exactly what it evaluated on.
    train_limit: int | None = None
    eval_limit: int | None = None
    test_limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # A named part of the data set that `root` holds instead of the whole (the MTOP sample shipped in the
    # package): its runs are never the full data's cells. null: the data set itself. The identity counts it
    # only when set (core/identity.py: COUNTED_WHEN_SET), since `root` itself is not part of a run's identity.
    subset: str | None = None

    def validate(self, where: str) -> None:
        if self.max_length < 1:
            raise ConfigError(f"{where}.max_length must be >= 1, got {self.max_length}")
        if not self.languages:
            raise ConfigError(f"{where}.languages is empty")
        if self.monitor_language is not None and self.monitor_language not in self.languages:
            raise ConfigError(
                f"{where}.monitor_language={self.monitor_language!r} is not one of {where}.languages {list(self.languages)}"
            )


@dataclass
class LoadedData:
    """Parsed splits plus a report of what the loader counted, skipped or repaired."""

    splits: dict[str, list[Example]]
    report: dict[str, Any] = field(default_factory=dict)
    # What the splits are a function of (the cache key of the parse, plus train_limit): later stages
    # such as featurization key their own caches by it. None when unknown (nothing is cached then).
    key: str | None = None


Loader = Callable[[DataConfig], LoadedData]
LOADERS: Registry[LoadedData] = Registry("data set")


def file_signature(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cached_splits(key: str, parse: Callable[[], LoadedData]) -> LoadedData:
    """Parsed splits held and cached by Hugging Face `datasets` (Arrow files), keyed by the source files."""
    import datasets

    folder = cache_dir() / "datasets" / key
    report_path = folder / "report.json"
    if report_path.exists():
        splits = {}
        for split in SPLITS:
            columns = datasets.load_from_disk(str(folder / split)).to_dict()
            names = list(Example.__dataclass_fields__)
            splits[split] = [Example(*values) for values in zip(*(columns[name] for name in names))]
        return LoadedData(splits, json.loads(report_path.read_text()), key)
    loaded = parse()
    loaded.key = key
    partial = folder.with_name(folder.name + ".partial")
    datasets.disable_progress_bars()
    for split, examples in loaded.splits.items():
        # Attribute access, not dataclasses.asdict: asdict deep-copies every word (10x slower on IMDB).
        columns = {name: [getattr(example, name) for example in examples] for name in Example.__dataclass_fields__}
        datasets.Dataset.from_dict(columns).save_to_disk(str(partial / split))
    (partial / "report.json").write_text(json.dumps(loaded.report, indent=1, sort_keys=True))
    if not folder.exists():
        partial.rename(folder)
    return loaded
