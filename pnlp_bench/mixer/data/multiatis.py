"""MultiATIS++ (Xu et al., EMNLP 2020): 9 languages, BIO slots and intents.

Files `<root>/{train,dev,test}_<LANG>.tsv[.gz]` with header `id  utterance  slot_labels  intent`; slot
labels are aligned with the whitespace tokens of the utterance; multi-intent labels such as
`atis_flight#atis_airfare` are atomic classes. Read with no quoting (utterances contain quotes).

Policy for rows whose token and tag counts differ (a known defect of the release: e.g. FR train 75,
ES test 80, FR test 102 rows): the row is kept with its intent, so intent accuracy is over the full
published test sets, and it carries no slot tags: it adds no slot loss in training and is left out of
slot F1 and exact match. The loader counts these rows per file in its report.

There is no open download: MultiATIS++ is distributed by the LDC (LDC2021T04).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.core.files import DataError, find_root, iter_lines
from pnlp_bench.mixer.data.base import SPLITS, DataConfig, Example, LoadedData, LOADERS, cached_splits, file_signature
from pnlp_bench.core.paths import resolve_data_root

LOADER_VERSION = 1
LANGUAGES = ("en", "es", "pt", "de", "fr", "zh", "ja", "hi", "tr")
FILE_SPLIT = {"train": "train", "eval": "dev", "test": "test"}
HOW_TO_GET = (
    "MultiATIS++ is distributed by the LDC (LDC2021T04); put its {train,dev,test}_<LANG>.tsv files in one "
    "folder and set data.root to it (or BENCH_DATA_DIR to a folder holding multiatis/multiatis_pp/)"
)


@dataclass
class MultiAtisOptions:
    pass


def split_path(root: Path, lang: str, split: str) -> Path:
    plain = root / f"{FILE_SPLIT[split]}_{lang.upper()}.tsv"
    return plain if plain.exists() else plain.with_name(plain.name + ".gz")


def read_split(path: Path, lang: str, report: dict) -> list[Example]:
    examples = []
    mismatched = 0
    lines = iter_lines(path)
    header = next(lines, (1, ""))[1].split("\t")
    if header == [""]:
        raise DataError(f"{path}: empty file")
    if header != ["id", "utterance", "slot_labels", "intent"]:
        raise DataError(f"{path}:1: expected header 'id utterance slot_labels intent', found {header}")
    for line_number, line in lines:
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 4:
            raise DataError(f"{path}:{line_number}: expected 4 tab-separated columns, found {len(columns)}")
        uid, utterance, slot_labels, intent = columns
        words, tags = utterance.split(), slot_labels.split()
        if not words:
            raise DataError(f"{path}:{line_number}: empty utterance")
        if not intent.strip():
            raise DataError(f"{path}:{line_number}: empty intent")
        if len(words) != len(tags):
            mismatched += 1
            tags = None
        examples.append(Example(uid=f"{lang}-{uid}", lang=lang, words=words, label=intent, tags=tags))
    if not examples:
        raise DataError(f"{path}: no examples")
    report["token_tag_count_mismatch"][path.name] = mismatched
    return examples


@LOADERS.register("multiatis", MultiAtisOptions)
def load_multiatis(config: DataConfig) -> LoadedData:
    unknown = sorted(set(config.languages) - set(LANGUAGES))
    if unknown:
        raise DataError(f"data.languages: MultiATIS++ has no language {unknown[0]!r}; valid: {', '.join(LANGUAGES)}")
    candidates = resolve_data_root(config.root, "multiatis/multiatis_pp")
    root = find_root(candidates, f"train_{config.languages[0].upper()}.tsv", "MultiATIS++", HOW_TO_GET)
    paths = {(lang, split): split_path(root, lang, split) for lang in config.languages for split in SPLITS}
    for path in paths.values():
        if not path.exists():
            raise DataError(f"MultiATIS++ file missing: {path}; {HOW_TO_GET}")

    def parse() -> LoadedData:
        report: dict = {"root": str(root), "token_tag_count_mismatch": {}}
        splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
        for (lang, split), path in paths.items():
            examples = read_split(path, lang, report)
            report[f"{lang}/{split}"] = len(examples)
            splits[split].extend(examples)
        report["token_tag_count_mismatch_total"] = sum(report["token_tag_count_mismatch"].values())
        return LoadedData(splits, report)

    key = f"multiatis-v{LOADER_VERSION}-{file_signature(list(paths.values()))}"
    return cached_splits(key, parse)
