"""Hyperpartisan News Detection, by-article (Kiesel et al., SemEval-2019 Task 4): 645 labelled articles.

Read from the original release files (plain or gzipped), `articles-training-byarticle-20181122.xml` (the
`<article id title published-at>` elements with `<p>`, `<a>`, `<q>` markup) and
`ground-truth-training-byarticle-20181122.xml` (`<article id hyperpartisan="true|false" ...>`), joined by
id. With `data.download=true` and no local copy, both are fetched from their Zenodo record (1489920)
through Hugging Face `datasets`' download manager.

Text: all character data inside an article (its paragraphs, links and quotes, as `itertext` gives; the
title attribute is left out, as in the Longformer paper's preprocessing), then the whitespace +
punctuation pre-tokenizer of `pnlp_bench/mixer/data/text.py`. Labels are `true`/`false` (`true` =
hyperpartisan, the positive class of F1, the metric of the papers).

Splits. The by-article data has no official split (its test set stayed hidden on TIRA). Two options:
- `options.split=cv10` (default): stratified 10-fold cross-validation. Articles are dealt to 10 folds by
  label in keyed-hash order of their ids (`options.split_seed`, default 0; `pnlp_bench/core/splits.py`),
  so every fold has the 37/63 label balance. `options.fold=k` (0-9) tests on fold k, selects the
  checkpoint on fold k+1 (mod 10) and trains on the other eight: 80/10/10, about 516/64/65 articles,
  the proportions of the Longformer paper's split. Report the mean over folds 0-9. The train split is
  listed in the same keyed-hash order, so `data.train_limit=N` takes a random sample.
- `options.split=longformer`: the fixed train/dev/test split of the Longformer paper (516/64/65 articles),
  published as `scripts/hp-splits.json` in allenai/longformer (`{"train": [ids], "dev": [ids], "test":
  [ids]}`, integer article ids). Its membership is not shipped here: give the file with
  `options.split_file=<path>`, or pass `data.download=true` to fetch it from the Longformer repository.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import DataConfig, Example, LoadedData, LOADERS, cached_splits, file_signature
from pnlp_bench.core.splits import hash_order, stratified_folds
from pnlp_bench.mixer.data.text import with_gz, words_of
from pnlp_bench.core.paths import resolve_data_root
from pnlp_bench.core.registry import ConfigError

LOADER_VERSION = 2
ARTICLES = "articles-training-byarticle-20181122.xml"
GROUND_TRUTH = "ground-truth-training-byarticle-20181122.xml"
ZENODO = "https://zenodo.org/record/1489920/files"
DOWNLOAD_URLS = {ARTICLES: f"{ZENODO}/{ARTICLES.removesuffix('.xml')}.zip", GROUND_TRUTH: f"{ZENODO}/{GROUND_TRUTH.removesuffix('.xml')}.zip"}
LONGFORMER_SPLITS_URL = "https://raw.githubusercontent.com/allenai/longformer/master/scripts/hp-splits.json"
LABELS = ("false", "true")
FOLDS = 10
HOW_TO_GET = (
    f"download {DOWNLOAD_URLS[ARTICLES]} and {DOWNLOAD_URLS[GROUND_TRUTH]}, unzip both into one folder and "
    "set data.root to it (or BENCH_DATA_DIR to a folder holding hyperpartisan/), or pass data.download=true when online"
)


@dataclass
class HyperpartisanOptions:
    split: str = "cv10"  # cv10 | longformer
    fold: int = 0  # cv10: test fold k, eval fold k+1 (mod 10), train the other eight
    split_seed: int = 0
    split_file: str | None = None  # longformer: a copy of allenai/longformer scripts/hp-splits.json

    def validate(self, where: str) -> None:
        if self.split not in {"cv10", "longformer"}:
            raise ConfigError(f"{where}.split must be cv10 or longformer, got {self.split!r}")
        if not 0 <= self.fold < FOLDS:
            raise ConfigError(f"{where}.fold must be 0..{FOLDS - 1}, got {self.fold}")


def read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    chunks: list[bytes] = []
    try:
        with opener(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                chunks.append(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        line = sum(chunk.count(b"\n") for chunk in chunks) + 1
        raise DataError(f"{path}:{line}: truncated or corrupt gzip ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({type(error).__name__}: {error})") from None
    return b"".join(chunks)


def read_articles(path: Path) -> list[tuple[int, dict[str, str], str]]:
    """(line, attributes, text) of every `<article>` under the root element, with expat (for line numbers)."""
    data = read_bytes(path)
    parser = expat.ParserCreate()
    records: list[tuple[int, dict[str, str], str]] = []
    depth = 0
    opened: tuple[int, dict[str, str]] = (0, {})
    pieces: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, opened
        depth += 1
        if depth == 2:
            if name != "article":
                raise DataError(f"{path}:{parser.CurrentLineNumber}: expected <article>, found <{name}>")
            opened = (parser.CurrentLineNumber, attributes)
            pieces.clear()

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        if depth == 1:
            records.append((*opened, "".join(pieces)))

    def text(data: str) -> None:
        if depth >= 2:
            pieces.append(data)

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        line = data.split(b"\n")[error.lineno - 1] if error.lineno <= data.count(b"\n") + 1 else b""
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise DataError(f"{path}:{error.lineno}: invalid UTF-8 (byte {decode_error.start} of the line)") from None
        raise DataError(f"{path}:{error.lineno}: malformed XML ({expat.errors.messages[error.code]}, column {error.offset})") from None
    if not records:
        raise DataError(f"{path}: no <article> elements")
    return records


def read_labels(path: Path) -> dict[str, str]:
    labels: dict[str, str] = {}
    for line, attributes, _ in read_articles(path):
        article_id, label = attributes.get("id"), attributes.get("hyperpartisan")
        if not article_id:
            raise DataError(f"{path}:{line}: <article> without an id")
        if label not in LABELS:
            raise DataError(f"{path}:{line}: article {article_id}: unknown label hyperpartisan={label!r}; expected true or false")
        if article_id in labels:
            raise DataError(f"{path}:{line}: article {article_id} is labelled twice")
        labels[article_id] = label
    return labels


def read_examples(articles_path: Path, labels_path: Path) -> list[Example]:
    labels = read_labels(labels_path)
    examples, seen = [], set()
    for line, attributes, text in read_articles(articles_path):
        article_id = attributes.get("id")
        if not article_id:
            raise DataError(f"{articles_path}:{line}: <article> without an id")
        if article_id in seen:
            raise DataError(f"{articles_path}:{line}: article {article_id} appears twice")
        seen.add(article_id)
        if article_id not in labels:
            raise DataError(f"{articles_path}:{line}: article {article_id} has no label in {labels_path}")
        words = words_of(text)
        if not words:
            raise DataError(f"{articles_path}:{line}: article {article_id} is empty")
        examples.append(Example(uid=article_id, lang="en", words=words, label=labels[article_id]))
    unlabelled = sorted(set(labels) - seen)
    if unlabelled:
        raise DataError(f"{labels_path}: {len(unlabelled)} labelled articles missing from {articles_path}, e.g. {unlabelled[0]}")
    return examples


def cross_validation_split(examples: list[Example], fold: int, seed: int) -> dict[str, list[Example]]:
    folds = stratified_folds(examples, FOLDS, seed)
    test, evaluation = folds[fold], folds[(fold + 1) % FOLDS]
    held_out = {example.uid for example in test + evaluation}
    train = hash_order([e for e in examples if e.uid not in held_out], seed)
    return {"train": train, "eval": evaluation, "test": test}


def file_split(examples: list[Example], path: Path) -> tuple[dict[str, list[Example]], int]:
    """The split a Longformer-style `hp-splits.json` names; returns it and the number of articles it leaves out."""
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
        names = {"train": listed["train"], "eval": listed["dev"], "test": listed["test"]}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{path}: expected a JSON object with train, dev and test lists of article ids ({error})") from None
    by_id = {int(example.uid): example for example in examples}
    splits: dict[str, list[Example]] = {}
    used: set[int] = set()
    for split, ids in names.items():
        splits[split] = []
        for article_id in ids:
            if not isinstance(article_id, int) or article_id not in by_id:
                raise DataError(f"{path}: {split}: unknown article id {article_id!r}")
            if article_id in used:
                raise DataError(f"{path}: article id {article_id} is listed twice")
            used.add(article_id)
            splits[split].append(by_id[article_id])
    return splits, len(by_id) - len(used)


def download(url: str) -> Path:
    import datasets

    return Path(datasets.DownloadManager().download_and_extract(url))


def locate(config: DataConfig) -> tuple[Path, Path]:
    candidates = resolve_data_root(config.root, "hyperpartisan")
    for candidate in candidates:
        articles, labels = with_gz(candidate / ARTICLES), with_gz(candidate / GROUND_TRUTH)
        if articles.exists() and labels.exists():
            return articles, labels
    if config.download:
        return tuple(with_gz(download(DOWNLOAD_URLS[name]) / name) for name in (ARTICLES, GROUND_TRUTH))  # type: ignore[return-value]
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(f"Hyperpartisan not found (looked for {ARTICLES}[.gz] and {GROUND_TRUTH}[.gz] in: {looked}); {HOW_TO_GET}")


def split_file_path(config: DataConfig, options: HyperpartisanOptions) -> Path:
    if options.split_file:
        path = Path(options.split_file).expanduser()
        if not path.exists():
            raise DataError(f"data.options.split_file: {path} does not exist")
        return path
    if config.download:
        return download(LONGFORMER_SPLITS_URL)
    raise DataError(
        "data.options.split=longformer needs the Longformer paper's split file: set data.options.split_file to a "
        f"copy of {LONGFORMER_SPLITS_URL}, or pass data.download=true to fetch it"
    )


@LOADERS.register("hyperpartisan", HyperpartisanOptions)
def load_hyperpartisan(config: DataConfig) -> LoadedData:
    options: HyperpartisanOptions = LOADERS.parse("hyperpartisan", config.options, "data.options")
    articles_path, labels_path = locate(config)
    for path in (articles_path, labels_path):
        if not path.exists():
            raise DataError(f"Hyperpartisan file missing: {path}; {HOW_TO_GET}")
    signed = [articles_path, labels_path]
    if options.split == "longformer":
        splits_path = split_file_path(config, options)
        signed.append(splits_path)
        split_name = f"longformer ({splits_path})"
    else:
        split_name = f"cv10 fold {options.fold} (eval fold {(options.fold + 1) % FOLDS}), split_seed {options.split_seed}"

    def parse() -> LoadedData:
        examples = read_examples(articles_path, labels_path)
        left_out = 0
        if options.split == "longformer":
            splits, left_out = file_split(examples, splits_path)
        else:
            splits = cross_validation_split(examples, options.fold, options.split_seed)
        report = {
            "root": str(articles_path.parent),
            "split": split_name,
            "articles": len(examples),
            "labels_total": {label: sum(e.label == label for e in examples) for label in LABELS},
            "articles_in_no_split": left_out,
            **{split: len(members) for split, members in splits.items()},
            "labels": {
                split: {label: sum(e.label == label for e in members) for label in LABELS}
                for split, members in splits.items()
            },
        }
        return LoadedData(splits, report)

    split_key = "longformer" if options.split == "longformer" else f"cv10-fold{options.fold}-seed{options.split_seed}"
    key = f"hyperpartisan-v{LOADER_VERSION}-{file_signature(signed)}-{split_key}"
    return cached_splits(key, parse)
