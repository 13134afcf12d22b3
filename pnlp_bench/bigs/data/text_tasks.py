"""Text tasks for BiGS: what every text loader returns, the typed `data` config, and the registry.

pNLP-Mixer reads words (`data/base.py`, `LOADERS`); BiGS reads raw text and tokenizes it with WordPiece, so
its data sets live in this sibling registry, `TEXT_DATA`. A loader returns a `TextTask`: the kind of task
(which head, loss and metric follow), its splits of `TextExample`s and a report of what it counted.

Split names: `train`, then the labelled evaluation splits (`eval`, the data set's dev set, as pNLP-Mixer's
selection split is called; `eval_mismatched` for MNLI). GLUE and SCROLLS hide their test labels, so the
papers report dev; so do we.

`data.train_limit=N` means what it means for pNLP-Mixer (`data/base.py`): a fixed random subset of N training
examples (corpora: N documents), file order kept. It is drawn with its own generator, seeded by
`data.subset_seed` (0) and never by the run's `seed`, so every seed of a cell trains on the same rows and a
table's seeds differ only in initialisation and order. `data.eval_limit` keeps the first rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pnlp_bench.core.files import iter_lines
from pnlp_bench.core.registry import ConfigError, Registry

TaskKind = Literal["classification", "regression", "multiple_choice", "mlm"]
TASK_KINDS = ("classification", "regression", "multiple_choice", "mlm")
TRUNCATIONS = ("longest_first", "only_second")


@dataclass
class TextExample:
    """One example. `label` is a class index, a regression score or the index of the right choice.

    Multiple choice: each of `choices` is paired with the example (``text`` + choice, then ``text_pair``, the
    long context), one sequence per choice. Corpora for MLM use `text` only.
    """

    uid: str
    text: str
    text_pair: str | None = None
    label: int | float | None = None
    choices: list[str] | None = None


@dataclass
class TextTask:
    kind: TaskKind
    splits: dict[str, list[TextExample]]
    label_names: list[str] = field(default_factory=list)
    # the scorer in pnlp_bench.core.metrics that turns predictions into this data set's metrics
    metric: str = "accuracy"
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_splits(self) -> list[str]:
        return [name for name in self.splits if name != "train"]


@dataclass
class TextDataConfig:
    """Fields shared by every BiGS data set; a loader reads its own typed options from `options`."""

    name: str
    # a folder holding the data set as distributed (GLUE: glue/<TASK>/{train,dev}.tsv[.gz]); null searches
    # BENCH_DATA_DIR, ./data and ../shared/data
    root: str | None = None
    max_length: int = 128
    # pairs: cut the longer side first (GLUE), or only the second text, the long context (SCROLLS)
    truncation: str = "longest_first"
    monitor: str = "accuracy"  # selects best.pt; the record reports the final epoch
    download: bool = False  # true: read the Hugging Face dataset online when no local copy is found
    train_limit: int | None = None  # a fixed random subset of this many (corpora: documents)
    # the seed of that subset: its own, not the run's, so every seed trains on the same rows (module doc)
    subset_seed: int = 0
    eval_limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if self.max_length < 8:
            raise ConfigError(f"{where}.max_length must be >= 8, got {self.max_length}")
        if self.truncation not in TRUNCATIONS:
            raise ConfigError(f"{where}.truncation must be one of {', '.join(TRUNCATIONS)}, got {self.truncation!r}")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{where}.{name} must be >= 1 or null, got {value}")


TEXT_DATA: Registry[TextTask] = Registry("BiGS data set")


def existing(path: Path) -> Path | None:
    """`path` itself, or `path.gz` beside it; None when neither exists."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) of a plain or gzipped UTF-8 file (a leading BOM dropped).

    Decoding is per line (`core/files.py: iter_lines`), so invalid UTF-8 or a truncated gzip stream is one DataError
    naming the file and the line."""
    for number, line in iter_lines(path):
        yield number, line.removeprefix("\ufeff") if number == 1 else line
