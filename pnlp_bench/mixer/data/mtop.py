"""MTOP (Li et al., EACL 2021), read from the original release layout.

`<root>/<lang>/{train,eval,test}.txt` (plain or gzipped), 8 tab-separated columns:
id | intent | slot spans "start:end:SL:X,..." | utterance | domain | locale | decoupled form | tokens JSON,
with spans and token spans in UTF-8 byte offsets. BIO tags are derived from the spans and the token spans:
slots are taken by earliest start, then longest; a slot that overlaps one already taken, or whose ends do
not fall on token boundaries, is left out of the BIO tags, and such rows are counted in the report
(MTOP itself has overlapping spans in its translated languages). Exact match then compares the intent and
the BIO tags, the usual flat intent+slot metric.

Online: with `data.download=true` and no local copy, the original release archive is fetched and
extracted through Hugging Face `datasets`' download manager.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.core.files import DataError, find_root, iter_lines
from pnlp_bench.mixer.data.base import SPLITS, DataConfig, Example, LoadedData, LOADERS, cached_splits, file_signature
from pnlp_bench.core.paths import resolve_data_root

LOADER_VERSION = 1
LANGUAGES = ("en", "de", "es", "fr", "hi", "th")
DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/mtop/mtop.zip"
HOW_TO_GET = (
    f"download the release from {DOWNLOAD_URL} and set data.root to its mtop/ folder "
    "(or BENCH_DATA_DIR to a folder holding mtop/full/), or pass data.download=true when online"
)


@dataclass
class MtopOptions:
    pass


def split_path(root: Path, lang: str, split: str) -> Path:
    plain = root / lang / f"{split}.txt"
    return plain if plain.exists() else plain.with_suffix(".txt.gz")


def bio_from_spans(spans: str, token_spans: list[dict]) -> tuple[list[str], int, int]:
    """BIO tags from the byte-offset slot spans; returns (tags, overlapping slots, off-boundary slots)."""
    starts = {span["start"]: index for index, span in enumerate(token_spans)}
    ends = {span["start"] + span["length"]: index for index, span in enumerate(token_spans)}
    slots = []
    for item in filter(None, spans.split(",")):
        start, end, label = item.split(":", 2)
        slots.append((int(start), int(end), label.removeprefix("SL:")))
    tags = ["O"] * len(token_spans)
    overlapping = off_boundary = 0
    for start, end, label in sorted(slots, key=lambda slot: (slot[0], slot[0] - slot[1])):
        if start not in starts or end not in ends:
            off_boundary += 1
            continue
        first, last = starts[start], ends[end]
        if any(tag != "O" for tag in tags[first : last + 1]):
            overlapping += 1
            continue
        tags[first] = f"B-{label}"
        for index in range(first + 1, last + 1):
            tags[index] = f"I-{label}"
    return tags, overlapping, off_boundary


def read_split(path: Path, lang: str, report: dict) -> list[Example]:
    examples = []
    for line_number, line in iter_lines(path):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 8:
            raise DataError(f"{path}:{line_number}: expected 8 tab-separated columns, found {len(columns)}")
        uid, intent, spans, utterance, *_, tokens_json = columns
        if not intent.startswith("IN:"):
            raise DataError(f"{path}:{line_number}: intent {intent!r} does not start with 'IN:'")
        try:
            tokens = json.loads(tokens_json)
            words, token_spans = tokens["tokens"], tokens["tokenSpans"]
            tags, overlapping, off_boundary = bio_from_spans(spans, token_spans)
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}:{line_number}: malformed tokens or slot spans ({error})") from None
        if not words or not utterance.strip():
            raise DataError(f"{path}:{line_number}: empty utterance")
        if overlapping:
            report["rows_with_overlapping_slots"] += 1
        if off_boundary:
            report["rows_with_slots_off_token_boundaries"] += 1
        examples.append(Example(uid=uid, lang=lang, words=words, label=intent, tags=tags))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def download_release() -> Path:
    """Fetch and extract the original archive through `datasets`; returns the folder holding <lang>/."""
    import datasets

    extracted = Path(datasets.DownloadManager().download_and_extract(DOWNLOAD_URL))
    for candidate in (extracted / "mtop", extracted):
        if (candidate / "en").is_dir():
            return candidate
    raise DataError(f"{DOWNLOAD_URL}: the archive has no en/ folder (extracted to {extracted})")


def locate(config: DataConfig) -> Path:
    candidates = resolve_data_root(config.root, "mtop/full")
    try:
        return find_root(candidates, f"{config.languages[0]}/train.txt", "MTOP", HOW_TO_GET)
    except DataError:
        if config.download:
            return download_release()
        raise


@LOADERS.register("mtop", MtopOptions)
def load_mtop(config: DataConfig) -> LoadedData:
    unknown = sorted(set(config.languages) - set(LANGUAGES))
    if unknown:
        raise DataError(f"data.languages: MTOP has no language {unknown[0]!r}; valid: {', '.join(LANGUAGES)}")
    root = locate(config)
    paths = {(lang, split): split_path(root, lang, split) for lang in config.languages for split in SPLITS}
    for path in paths.values():
        if not path.exists():
            raise DataError(f"MTOP file missing: {path} (and no plain .txt beside it); {HOW_TO_GET}")

    def parse() -> LoadedData:
        report: dict = {"root": str(root), "rows_with_overlapping_slots": 0, "rows_with_slots_off_token_boundaries": 0}
        splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
        for (lang, split), path in paths.items():
            examples = read_split(path, lang, report)
            report[f"{lang}/{split}"] = len(examples)
            splits[split].extend(examples)
        return LoadedData(splits, report)

    key = f"mtop-v{LOADER_VERSION}-{file_signature(list(paths.values()))}"
    return cached_splits(key, parse)
