"""IMDB Large Movie Review Dataset v1.0 (Maas et al., ACL 2011): sentiment of movie reviews, neg/pos.

Read from either layout, plain or gzipped:
- the original release, `aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt` (what the Stanford archive
  extracts to; `data.root` may point at `aclImdb/` or at the folder holding it);
- `{train,test}.jsonl[.gz]`, one review per line `{"text", "label": 0|1, "rating", "id"}` (the layout
  of the project's offline copy, text byte-identical to the release).
With `data.download=true` and no local copy, the original archive is fetched and extracted through
Hugging Face `datasets`' download manager.

Words: `<br />` tags removed, then whitespace + punctuation pre-tokenization (`pnlp_bench/mixer/data/text.py`).
Labels are the strings `neg` and `pos` (`pos` is the positive class of F1).

Validation split: IMDB has train and test only, and the test split must never select a checkpoint, so
`eval` is carved out of train: `options.eval_size` reviews (default 2,500, i.e. 10%), stratified by label
(1,250 neg + 1,250 pos), chosen in keyed-hash order of their uids with `options.split_seed` (default 0;
see `pnlp_bench/core/splits.py`). Train keeps the other 22,500; test is the full official 25,000. The
carve-out is the same on every machine and does not depend on the order of the source files. The train
split is listed in that same keyed-hash order (a fixed shuffle; the files list all negative reviews
first), so `data.train_limit=N` takes a balanced random sample, not N negative reviews.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import DataConfig, Example, LoadedData, LOADERS, cached_splits, file_signature
from pnlp_bench.core.splits import carve_stratified, hash_order
from pnlp_bench.core.files import iter_lines
from pnlp_bench.mixer.data.text import with_gz, words_of
from pnlp_bench.core.paths import resolve_data_root
from pnlp_bench.core.registry import ConfigError

LOADER_VERSION = 2
SOURCE_SPLITS = ("train", "test")
LABELS = ("neg", "pos")
DOWNLOAD_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
HOW_TO_GET = (
    f"download {DOWNLOAD_URL}, extract it and set data.root to its aclImdb/ folder "
    "(or BENCH_DATA_DIR to a folder holding imdb/), or pass data.download=true when online"
)
REVIEW_FILE = re.compile(r"(\d+)_(\d+)\.txt")


@dataclass
class ImdbOptions:
    eval_size: int = 2500  # reviews carved out of train (stratified, seeded) for checkpoint selection
    split_seed: int = 0

    def validate(self, where: str) -> None:
        if not 0 < self.eval_size < 25000:
            raise ConfigError(f"{where}.eval_size must be between 1 and 24,999, got {self.eval_size}")


def review(uid: str, text: str, label: str, where: str) -> Example:
    words = words_of(text)
    if not words:
        raise DataError(f"{where}: empty document")
    return Example(uid=uid, lang="en", words=words, label=label)


def read_jsonl(path: Path, split: str) -> list[Example]:
    examples, seen = [], set()
    for line_number, line in iter_lines(path, keep_newline=True):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            row = json.loads(line)
            text, label, review_id = row["text"], row["label"], row["id"]
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not a JSON object ({error.msg})") from None
        except (KeyError, TypeError) as error:
            raise DataError(f"{where}: expected fields text, label, id (missing {error})") from None
        if type(label) is not int or label not in (0, 1):
            raise DataError(f"{where}: unknown label {label!r}; expected 0 (neg) or 1 (pos)")
        if not isinstance(text, str):
            raise DataError(f"{where}: text is {type(text).__name__}, not a string")
        uid = f"{split}-{LABELS[label]}-{review_id}"
        if uid in seen:
            raise DataError(f"{where}: duplicate review {LABELS[label]}/{review_id}")
        seen.add(uid)
        examples.append(review(uid, text, LABELS[label], where))
    if not examples:
        raise DataError(f"{path}: no reviews")
    return examples


def read_release_folder(folder: Path, split: str) -> list[Example]:
    examples = []
    for label in LABELS:
        files = []
        for path in (folder / label).iterdir():
            match = REVIEW_FILE.fullmatch(path.name)
            if match is None:
                raise DataError(f"{path}: not a review file (expected <id>_<rating>.txt)")
            files.append((int(match.group(1)), path))
        for review_id, path in sorted(files):
            try:
                text = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"{path}:1: invalid UTF-8 ({error.reason} at byte {error.start})") from None
            examples.append(review(f"{split}-{label}-{review_id}", text, label, f"{path}:1"))
    if not examples:
        raise DataError(f"{folder}: no reviews in neg/ or pos/")
    return examples


def release_folder(candidate: Path) -> Path | None:
    for folder in (candidate, candidate / "aclImdb"):
        if (folder / "train" / "pos").is_dir() and (folder / "test" / "pos").is_dir():
            return folder
    return None


def download_release() -> Path:
    import datasets

    extracted = Path(datasets.DownloadManager().download_and_extract(DOWNLOAD_URL))
    folder = release_folder(extracted)
    if folder is None:
        raise DataError(f"{DOWNLOAD_URL}: the archive has no aclImdb/train/pos folder (extracted to {extracted})")
    return folder


def locate(config: DataConfig) -> tuple[str, Path]:
    """("jsonl", folder) or ("release", aclImdb folder)."""
    candidates = resolve_data_root(config.root, "imdb")
    for candidate in candidates:
        if with_gz(candidate / "train.jsonl").exists():
            return "jsonl", candidate
        folder = release_folder(candidate)
        if folder is not None:
            return "release", folder
    if config.download:
        return "release", download_release()
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(f"IMDB not found (looked for train.jsonl[.gz] or aclImdb/train/pos in: {looked}); {HOW_TO_GET}")


@LOADERS.register("imdb", ImdbOptions)
def load_imdb(config: DataConfig) -> LoadedData:
    options: ImdbOptions = LOADERS.parse("imdb", config.options, "data.options")
    layout, root = locate(config)
    if layout == "jsonl":
        sources = {split: with_gz(root / f"{split}.jsonl") for split in SOURCE_SPLITS}
        for path in sources.values():
            if not path.exists():
                raise DataError(f"IMDB file missing: {path} (and no .gz beside it); {HOW_TO_GET}")
        signed = list(sources.values())
    else:
        sources = {split: root / split for split in SOURCE_SPLITS}
        signed = [path for split in SOURCE_SPLITS for label in LABELS for path in (root / split / label).iterdir()]

    def parse() -> LoadedData:
        read = read_jsonl if layout == "jsonl" else read_release_folder
        train_source, test = (read(sources[split], split) for split in SOURCE_SPLITS)
        train, evaluation = carve_stratified(train_source, options.eval_size, options.split_seed)
        splits = {"train": hash_order(train, options.split_seed), "eval": evaluation, "test": test}
        report = {
            "root": str(root),
            "layout": layout,
            "train_source": len(train_source),
            "eval_carved_from_train": f"{len(evaluation)} reviews, stratified, split_seed {options.split_seed}",
            **{split: len(examples) for split, examples in splits.items()},
            "labels": {
                split: {label: sum(e.label == label for e in examples) for label in LABELS}
                for split, examples in splits.items()
            },
        }
        return LoadedData(splits, report)

    key = f"imdb-v{LOADER_VERSION}-{file_signature(signed)}-eval{options.eval_size}-seed{options.split_seed}"
    return cached_splits(key, parse)
