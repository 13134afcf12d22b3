"""Text corpora for masked-LM pretraining: WikiText-2 offline, any text files, any Hugging Face text dataset.

Every non-blank line is one document (`TextExample.text`); `bigs/pretrain.py` tokenizes them, joins them and
cuts the stream into fixed-length blocks. `data.train_limit` / `data.eval_limit` count documents (lines).

* ``wikitext2``: the tokenised WikiText-2 release (``wiki.{train,valid}.tokens[.gz]``) under ``data.root``,
  else ``wikitext-2/`` in ``$BENCH_DATA_DIR``, ``./data``, ``../shared/data``. Its tokenisation is undone
  where it would mislead WordPiece: ``@-@`` ``@,@`` ``@.@`` join their neighbours again, ``<unk>`` becomes
  BERT's ``[UNK]`` (so it is one token, never masked into pieces), and headings lose their ``=`` marks.
* ``text_corpus``: ``options.files`` (plain or gzipped text; globs allowed) with ``options.dev_files``, or
  with no dev files the last ``options.dev_fraction`` of the documents. With no files and
  ``data.download=true``: ``options.hf_dataset`` (+ ``hf_config``) through ``datasets.load_dataset``,
  column ``text_column``.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

from pnlp_bench.core.files import DataError
from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig, TextExample, TextTask, existing, read_lines
from pnlp_bench.core.paths import resolve_data_root
from pnlp_bench.core.registry import ConfigError

WIKITEXT2_FILES = {"train": "wiki.train.tokens", "eval": "wiki.valid.tokens"}
_JOINED = re.compile(r" @([-,.])@ ")


@dataclass
class WikiText2Options:
    pass


@dataclass
class TextCorpusOptions:
    files: list[str] = field(default_factory=list)
    dev_files: list[str] = field(default_factory=list)
    dev_fraction: float = 0.01
    hf_dataset: str | None = None
    hf_config: str | None = None
    hf_train_split: str = "train"
    hf_dev_split: str | None = "validation"
    text_column: str = "text"

    def validate(self, where: str) -> None:
        if not self.files and not self.hf_dataset:
            raise ConfigError(f"{where}: give files (local text) or hf_dataset (online)")
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(f"{where}.dev_fraction must be in (0, 1), got {self.dev_fraction}")


def clean_wikitext_line(line: str) -> str:
    """Undo WikiText's tokenisation artefacts that would mislead a WordPiece model (see the module doc)."""
    stripped = line.strip()
    if stripped.startswith("=") and stripped.endswith("="):  # a heading: " = = Gameplay = = "
        line = stripped.strip("= ")
    line = _JOINED.sub(r"\1", line)
    return line.replace("<unk>", "[UNK]").strip()


def documents(path: Path, name: str, clean=lambda line: line.strip()) -> list[TextExample]:
    found = []
    for line_number, line in read_lines(path):
        text = clean(line)
        if text:  # blank lines separate documents: skipped
            found.append(TextExample(uid=f"{name}:{line_number}", text=text))
    if not found:
        raise DataError(f"{path}: no text (an empty file, or only blank lines)")
    return found


@TEXT_DATA.register("wikitext2", WikiText2Options)
def load_wikitext2(options: WikiText2Options, config: TextDataConfig) -> TextTask:
    candidates = [Path(config.root).expanduser()] if config.root else resolve_data_root(None, "wikitext-2")
    root = next((c for c in candidates if existing(c / WIKITEXT2_FILES["train"]) is not None), None)
    if root is None:
        looked = ", ".join(str(candidate) for candidate in candidates)
        raise DataError(
            f"WikiText-2 not found (looked for {WIKITEXT2_FILES['train']}[.gz] in: {looked}); set data.root, "
            "or use data=text_corpus with your own files or a Hugging Face dataset"
        )
    splits = {}
    for split, file_name in WIKITEXT2_FILES.items():
        path = existing(root / file_name)
        if path is None:
            raise DataError(f"WikiText-2: {root / file_name}[.gz] missing")
        splits[split] = documents(path, f"{split}", clean_wikitext_line)
    return TextTask("mlm", splits, metric="mlm", report={"source": str(root)})


def expand(patterns: list[str]) -> list[Path]:
    paths = []
    for pattern in patterns:
        matched = sorted(glob.glob(str(Path(pattern).expanduser())))
        if not matched:
            raise DataError(f"text_corpus: no file matches {pattern!r}")
        paths.extend(Path(path) for path in matched)
    return paths


@TEXT_DATA.register("text_corpus", TextCorpusOptions)
def load_text_corpus(options: TextCorpusOptions, config: TextDataConfig) -> TextTask:
    if not options.files:
        if not config.download:
            raise DataError(
                f"text_corpus: no options.files; pass data.download=true to read {options.hf_dataset} online, "
                "or data.options.files=[...] for local text"
            )
        return load_hf_corpus(options)
    train = [doc for path in expand(options.files) for doc in documents(path, path.name)]
    if options.dev_files:
        dev = [doc for path in expand(options.dev_files) for doc in documents(path, path.name)]
    else:
        cut = max(1, round(len(train) * (1 - options.dev_fraction)))
        train, dev = train[:cut], train[cut:]
    source = {"files": options.files, "dev_files": options.dev_files or f"last {options.dev_fraction:.0%} of files"}
    return TextTask("mlm", {"train": train, "eval": dev}, metric="mlm", report={"source": source})


def load_hf_corpus(options: TextCorpusOptions) -> TextTask:
    import datasets

    name = f"{options.hf_dataset}" + (f"/{options.hf_config}" if options.hf_config else "")
    try:
        loaded = datasets.load_dataset(options.hf_dataset, options.hf_config)
    except Exception as error:
        raise DataError(f"text_corpus: cannot load {name} through datasets ({type(error).__name__}: {error})") from None

    def split_documents(split: str) -> list[TextExample]:
        if split not in loaded:
            raise DataError(f"text_corpus: {name} has no split {split!r}; it has {', '.join(loaded)}")
        if options.text_column not in loaded[split].column_names:
            raise DataError(f"text_corpus: {name}/{split} has no column {options.text_column!r}")
        texts = loaded[split][options.text_column]
        return [TextExample(uid=f"{split}:{i}", text=t.strip()) for i, t in enumerate(texts) if t and t.strip()]

    train = split_documents(options.hf_train_split)
    if options.hf_dev_split and options.hf_dev_split in loaded:
        dev = split_documents(options.hf_dev_split)
    else:
        cut = max(1, round(len(train) * (1 - options.dev_fraction)))
        train, dev = train[:cut], train[cut:]
    return TextTask("mlm", {"train": train, "eval": dev}, metric="mlm", report={"source": f"hf:{name}"})
