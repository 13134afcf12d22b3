"""GLUE (Wang et al., 2019) for BiGS fine-tuning: the original tsv files offline, Hugging Face `datasets` online.

Offline: SST-2, CoLA, MRPC, RTE and STS-B are read from the files of GLUE's own `download_glue_data.py`
(plain or gzipped) under `data.root`, else `glue/<TASK>/` in `$BENCH_DATA_DIR`, `./data`, `../shared/data`.
Online (`data.download=true`): all nine tasks through `datasets.load_dataset("nyu-mll/glue", task)`.
Label indices are the same on both paths (those of the Hugging Face copy), so a head trained on one reads
the other. Test labels are hidden by GLUE: only train and dev are loaded, and dev is what is reported.

Metrics (GLUE's own, `pnlp_bench.core.metrics.glue_scores`): Matthews correlation for CoLA, F1 and accuracy for
MRPC and QQP, Pearson and Spearman for STS-B, accuracy otherwise; MNLI reports matched (split `eval`, GLUE's
dev set) and mismatched (`eval_mismatched`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.core.files import DataError
from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig, TextExample, TextTask, existing, read_lines
from pnlp_bench.core.paths import resolve_data_root


@dataclass(frozen=True)
class GlueTask:
    folder: str  # the task's folder in GLUE's release
    label_names: tuple[str, ...]  # empty for regression
    text_columns: tuple[str, ...]  # Hugging Face column names
    eval_splits: tuple[tuple[str, str], ...] = (("eval", "validation"),)  # ours, Hugging Face's
    # offline reader: a row of the tsv -> (text, text_pair, label as in the file); None = online only
    row: Callable[[dict[str, str]], tuple[str, str | None, str]] | None = None
    header: tuple[str, ...] | None = None  # column names of a file without a header row

    @property
    def kind(self) -> str:
        return "classification" if self.label_names else "regression"


TASKS: dict[str, GlueTask] = {
    "sst2": GlueTask("SST-2", ("negative", "positive"), ("sentence",), row=lambda r: (r["sentence"], None, r["label"])),
    "cola": GlueTask(
        "CoLA",
        ("unacceptable", "acceptable"),
        ("sentence",),
        row=lambda r: (r["sentence"], None, r["label"]),
        header=("source", "label", "original_label", "sentence"),
    ),
    "mrpc": GlueTask(
        "MRPC",
        ("not_equivalent", "equivalent"),
        ("sentence1", "sentence2"),
        row=lambda r: (r["#1 String"], r["#2 String"], r["Quality"]),
    ),
    "rte": GlueTask(
        "RTE",
        ("entailment", "not_entailment"),
        ("sentence1", "sentence2"),
        row=lambda r: (r["sentence1"], r["sentence2"], r["label"]),
    ),
    "stsb": GlueTask("STS-B", (), ("sentence1", "sentence2"), row=lambda r: (r["sentence1"], r["sentence2"], r["score"])),
    "qnli": GlueTask("QNLI", ("entailment", "not_entailment"), ("question", "sentence")),
    "qqp": GlueTask("QQP", ("not_duplicate", "duplicate"), ("question1", "question2")),
    "mnli": GlueTask(
        "MNLI",
        ("entailment", "neutral", "contradiction"),
        ("premise", "hypothesis"),
        eval_splits=(("eval", "validation_matched"), ("eval_mismatched", "validation_mismatched")),
    ),
    "wnli": GlueTask("WNLI", ("not_entailment", "entailment"), ("sentence1", "sentence2")),
}
OFFLINE_FILES = {"train": "train.tsv", "eval": "dev.tsv"}


@dataclass
class GlueOptions:
    pass


def parse_label(task: GlueTask, raw: str, where: str) -> int | float:
    if task.kind == "regression":
        try:
            return float(raw)
        except ValueError:
            raise DataError(f"{where}: score {raw!r} is not a number") from None
    if raw in task.label_names:  # RTE writes its labels as words
        return task.label_names.index(raw)
    if raw.isdigit() and int(raw) < len(task.label_names):
        return int(raw)
    raise DataError(f"{where}: label {raw!r} is none of {', '.join(task.label_names)} (or their indices)")


def read_tsv(path: Path, name: str, task: GlueTask) -> list[TextExample]:
    """Rows of a GLUE tsv (GLUE's files are unquoted: csv.QUOTE_NONE, as GLUE's own readers do)."""
    assert task.row is not None
    examples = []
    header = list(task.header) if task.header else None
    for line_number, line in read_lines(path):
        if not line:
            continue
        row = line.split("\t")  # unquoted, one row per line: what csv.QUOTE_NONE reads
        if header is None:
            header = row
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{line_number}: expected {len(header)} tab-separated columns, found {len(row)}")
        text, text_pair, raw_label = task.row(dict(zip(header, row)))
        if not text.strip() or (text_pair is not None and not text_pair.strip()):
            raise DataError(f"{path}:{line_number}: empty sentence")
        label = parse_label(task, raw_label, f"{path}:{line_number}")
        examples.append(TextExample(uid=f"{name}-{path.name.split('.')[0]}-{line_number}", text=text, text_pair=text_pair, label=label))
    if header is None:
        raise DataError(f"{path}: empty file")
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def load_offline(name: str, task: GlueTask, root: Path) -> dict[str, list[TextExample]]:
    splits = {}
    for split, file_name in OFFLINE_FILES.items():
        path = existing(root / file_name)
        if path is None:
            raise DataError(f"GLUE {name}: {root / file_name}[.gz] missing")
        splits[split] = read_tsv(path, name, task)
    return splits


def load_online(name: str, task: GlueTask) -> dict[str, list[TextExample]]:
    import datasets

    try:
        loaded = datasets.load_dataset("nyu-mll/glue", name)
    except Exception as error:  # network, hub or cache errors all mean the same thing to the user
        raise DataError(f"GLUE {name}: cannot load nyu-mll/glue from the Hugging Face hub ({type(error).__name__}: {error})") from None
    splits = {}
    for ours, theirs in (("train", "train"), *task.eval_splits):
        rows = loaded[theirs]
        texts = [rows[column] for column in task.text_columns]
        pairs = texts[1] if len(texts) > 1 else [None] * len(rows)
        splits[ours] = [
            TextExample(uid=f"{name}-{ours}-{index}", text=text, text_pair=pair, label=label)
            for index, (text, pair, label) in enumerate(zip(texts[0], pairs, rows["label"]))
        ]
    return splits


def locate(name: str, task: GlueTask, config: TextDataConfig) -> Path | None:
    """The folder holding the task's train.tsv[.gz], or None when there is none."""
    if task.row is None:
        if config.root:
            raise DataError(f"GLUE {name}: no reader for local files of this task here; use data.download=true")
        return None
    candidates = [Path(config.root).expanduser()] if config.root else resolve_data_root(None, f"glue/{task.folder}")
    for candidate in candidates:
        if existing(candidate / OFFLINE_FILES["train"]) is not None:
            return candidate
    if config.root:
        raise DataError(f"GLUE {name}: no train.tsv[.gz] in data.root={config.root}")
    return None


def loader(name: str, task: GlueTask) -> Callable[..., TextTask]:
    def load(options: GlueOptions, config: TextDataConfig) -> TextTask:
        root = locate(name, task, config)
        if root is not None:
            splits, source = load_offline(name, task, root), str(root)
        elif config.download:
            splits, source = load_online(name, task), "hf:nyu-mll/glue"
        else:
            offline = "no offline copy was found" if task.row else "this task has no offline copy here"
            raise DataError(
                f"GLUE {name}: {offline} (looked for glue/{task.folder}/train.tsv[.gz] under BENCH_DATA_DIR, ./data, "
                "../shared/data); set data.root, or pass data.download=true when online"
            )
        return TextTask(
            kind=task.kind,  # type: ignore[arg-type]
            splits=splits,
            label_names=list(task.label_names),
            metric=f"glue_{name}",
            report={"source": source},
        )

    return load


for _name, _task in TASKS.items():
    TEXT_DATA.register(_name, GlueOptions)(loader(_name, _task))
