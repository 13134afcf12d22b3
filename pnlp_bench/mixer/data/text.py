"""Raw documents to words (reading files line by line is `pnlp_bench/core/files.py`: iter_lines).

Long-document data sets (IMDB, Hyperpartisan) come as running text, so they need a word pre-tokenizer;
sequence positions are words (the paper's choice), and each word is later split into WordPiece units by
the projection. The rule: HTML line breaks (`<br />`, which IMDB's reviews are full of) become spaces;
a word is then a maximal run of Unicode word characters (`\\w+`: letters, digits, underscore), and every
other non-space character (punctuation, symbols) is a word of its own: `it's.` -> `it`, `'`, `s`, `.`.
"""

from __future__ import annotations

import re
from pathlib import Path

LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
WORD_OR_SYMBOL = re.compile(r"\w+|[^\w\s]")


def words_of(text: str) -> list[str]:
    """Whitespace + punctuation pre-tokenization, `<br />` removed (see the module docstring)."""
    return WORD_OR_SYMBOL.findall(LINE_BREAK_TAG.sub(" ", text))


def with_gz(path: Path) -> Path:
    """`path` when it exists, else `path.gz` (the shared copies are gzipped; releases are not)."""
    return path if path.exists() else path.with_name(path.name + ".gz")
