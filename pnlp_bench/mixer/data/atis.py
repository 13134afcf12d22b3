"""English ATIS in the JointBERT layout (Goo et al. 2018 split: 4,478 / 500 / 893).

`<root>/{train,dev,test}/{seq.in,seq.out,label}`: one utterance per line (whitespace tokens), its BIO tags,
its intent. The three files of a split must have the same number of lines; a line whose token and tag
counts differ is an error naming the file and line (this release has none). ATIS is LDC data with no open
download: the loader only reads local copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.core.files import DataError, find_root, read_lines
from pnlp_bench.mixer.data.base import SPLITS, DataConfig, Example, LoadedData, LOADERS, cached_splits, file_signature
from pnlp_bench.core.paths import resolve_data_root

LOADER_VERSION = 1
FOLDER = {"train": "train", "eval": "dev", "test": "test"}
HOW_TO_GET = (
    "ATIS is LDC data (LDC93S5 and later); put the JointBERT-layout folders train/ dev/ test/ with seq.in, "
    "seq.out and label in one folder and set data.root to it"
)


@dataclass
class AtisOptions:
    pass


def read_split(folder: Path) -> list[Example]:
    words_path, tags_path, label_path = folder / "seq.in", folder / "seq.out", folder / "label"
    utterances, tag_lines, labels = read_lines(words_path), read_lines(tags_path), read_lines(label_path)
    if not (len(utterances) == len(tag_lines) == len(labels)):
        raise DataError(
            f"{folder}: seq.in, seq.out and label have {len(utterances)}, {len(tag_lines)} and {len(labels)} lines"
        )
    examples = []
    for index, (utterance, tag_line, label) in enumerate(zip(utterances, tag_lines, labels), start=1):
        words, tags = utterance.split(), tag_line.split()
        if not words:
            raise DataError(f"{words_path}:{index}: empty utterance")
        if len(words) != len(tags):
            raise DataError(f"{tags_path}:{index}: {len(tags)} tags for {len(words)} words")
        if not label.strip():
            raise DataError(f"{label_path}:{index}: empty intent")
        examples.append(Example(uid=f"en-{folder.name}-{index}", lang="en", words=words, label=label.strip(), tags=tags))
    return examples


@LOADERS.register("atis", AtisOptions)
def load_atis(config: DataConfig) -> LoadedData:
    if config.languages != ["en"]:
        raise DataError(f"data.languages: ATIS is English only; got {config.languages}")
    candidates = resolve_data_root(config.root, "multiatis/atis_en_jointbert")
    root = find_root(candidates, "train/seq.in", "ATIS", HOW_TO_GET)
    files = [root / FOLDER[split] / name for split in SPLITS for name in ("seq.in", "seq.out", "label")]

    def parse() -> LoadedData:
        splits = {split: read_split(root / FOLDER[split]) for split in SPLITS}
        return LoadedData(splits, {"root": str(root), **{f"en/{s}": len(v) for s, v in splits.items()}})

    for path in files:
        if not path.exists():
            raise DataError(f"ATIS file missing: {path}; {HOW_TO_GET}")
    return cached_splits(f"atis-v{LOADER_VERSION}-{file_signature(files)}", parse)
