"""MTOP's cross-lingually aligned dev/test subset (the XSemPLR release: 859 dev and 1,237 test utterances,
each present in all six languages), for evaluating on exactly the same meanings in every language.

Files `xsemplr_mtop_{dev,test}.json[.gz]`: a JSON array of
`{"id", "question": {lang: utterance}, "mr": {"slot_intent": {lang: decoupled logical form}}}`.
Utterances are space-tokenised. The intent is the root `IN:` label; BIO tags come from matching each
top-level slot's words (every leaf word inside the `[SL:X … ]` bracket) back into the utterance, left to
right, without overlap. Slots that cannot be matched are left out of the tags and counted. There is no
training split in this release: training uses the full MTOP train split (original layout, see mtop.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.mixer.data import mtop
from pnlp_bench.core.files import DataError, find_root, read_lines
from pnlp_bench.mixer.data.base import DataConfig, Example, LoadedData, LOADERS, cached_splits, file_signature
from pnlp_bench.core.paths import resolve_data_root

LOADER_VERSION = 1
HOW_TO_GET = "the XSemPLR files xsemplr_mtop_{dev,test}.json (GitHub psunlpgroup/XSemPLR, dataset/mtop); set data.options.aligned_root"


@dataclass
class AlignedOptions:
    aligned_root: str | None = None


def top_level_slots(logical_form: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """(root intent, [(slot label, its leaf words)]) of a bracketed decoupled form; ValueError if malformed."""
    tokens = logical_form.split()
    if not tokens or not tokens[0].startswith("[IN:"):
        raise ValueError("the form does not start with [IN:")
    intent, depth, slots = tokens[0][1:], 1, []
    for token in tokens[1:]:
        if token.startswith("["):
            depth += 1
            if depth == 2:
                if not token.startswith("[SL:"):
                    raise ValueError(f"unexpected {token} directly under the root intent")
                slots.append((token[4:], []))
        elif token == "]":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced brackets")
        elif depth >= 2:
            slots[-1][1].append(token)
    if depth != 0:
        raise ValueError("unbalanced brackets")
    return intent, slots


def align(words: list[str], slots: list[tuple[str, list[str]]]) -> tuple[list[str], int]:
    tags, unmatched, cursor = ["O"] * len(words), 0, 0
    for label, slot_words in slots:
        width = len(slot_words)
        found = next(
            (start for start in range(cursor, len(words) - width + 1) if width and words[start : start + width] == slot_words),
            None,
        )
        if found is None:
            unmatched += 1
            continue
        tags[found] = f"B-{label}"
        for index in range(found + 1, found + width):
            tags[index] = f"I-{label}"
        cursor = found + width
    return tags, unmatched


def read_aligned(path: Path, languages: list[str], report: dict) -> list[Example]:
    try:
        items = json.loads("\n".join(read_lines(path)))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(items, list) or not items:
        raise DataError(f"{path}: expected a non-empty JSON array of examples")
    examples = []
    for position, item in enumerate(items):
        for lang in languages:
            try:
                utterance, form = item["question"][lang], item["mr"]["slot_intent"][lang]
                intent, slots = top_level_slots(form)
            except (KeyError, TypeError, ValueError) as error:
                raise DataError(f"{path}: record {position} ({lang}): malformed example ({error})") from None
            words = utterance.split()
            if not words:
                raise DataError(f"{path}: record {position} ({lang}): empty utterance")
            tags, unmatched = align(words, slots)
            report["unmatched_slots"] += unmatched
            examples.append(Example(uid=f"{lang}-{item.get('id', position)}", lang=lang, words=words, label=intent, tags=tags))
    return examples


@LOADERS.register("mtop_aligned", AlignedOptions)
def load_mtop_aligned(config: DataConfig) -> LoadedData:
    unknown = sorted(set(config.languages) - set(mtop.LANGUAGES))
    if unknown:
        raise DataError(f"data.languages: MTOP has no language {unknown[0]!r}; valid: {', '.join(mtop.LANGUAGES)}")
    options = AlignedOptions(**config.options)
    aligned = find_root(resolve_data_root(options.aligned_root, "mtop"), "xsemplr_mtop_dev.json", "aligned MTOP", HOW_TO_GET)
    train_root = mtop.locate(config)
    paths = {split: aligned / f"xsemplr_mtop_{split}.json" for split in ("dev", "test")}
    paths = {split: path if path.exists() else path.with_name(path.name + ".gz") for split, path in paths.items()}
    train_paths = [mtop.split_path(train_root, lang, "train") for lang in config.languages]

    def parse() -> LoadedData:
        report: dict = {"unmatched_slots": 0, "rows_with_overlapping_slots": 0, "rows_with_slots_off_token_boundaries": 0}
        train = [example for lang, path in zip(config.languages, train_paths) for example in mtop.read_split(path, lang, report)]
        splits = {"train": train, "eval": read_aligned(paths["dev"], config.languages, report),
                  "test": read_aligned(paths["test"], config.languages, report)}
        report.update({f"{split}": len(examples) for split, examples in splits.items()})
        return LoadedData(splits, report)

    signature = file_signature([*paths.values(), *train_paths])
    return cached_splits(f"mtop-aligned-v{LOADER_VERSION}-{'-'.join(config.languages)}-{signature}", parse)
