"""Raw documents to words, and reading text files line by line with errors that name the line.

Long-document data sets (IMDB, Hyperpartisan) come as running text, so they need a word pre-tokenizer;
sequence positions are words (the paper's choice), and each word is later split into WordPiece units by
the projection. The rule: HTML line breaks (`<br />`, which IMDB's reviews are full of) become spaces;
a word is then a maximal run of Unicode word characters (`\\w+`: letters, digits, underscore), and every
other non-space character (punctuation, symbols) is a word of its own: `it's.` -> `it`, `'`, `s`, `.`.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from pnlp_bench.mixer.data.base import DataError

LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
WORD_OR_SYMBOL = re.compile(r"\w+|[^\w\s]")


def words_of(text: str) -> list[str]:
    """Whitespace + punctuation pre-tokenization, `<br />` removed (see the module docstring)."""
    return WORD_OR_SYMBOL.findall(LINE_BREAK_TAG.sub(" ", text))


def with_gz(path: Path) -> Path:
    """`path` when it exists, else `path.gz` (the shared copies are gzipped; releases are not)."""
    return path if path.exists() else path.with_name(path.name + ".gz")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a plain or gzipped UTF-8 file; one-line DataErrors name the file and line.

    Lines are decoded one by one so that invalid UTF-8 is reported at its line; a truncated or corrupt
    gzip stream is reported with the last line read intact.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    line_number = 0
    try:
        with opener(path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    yield line_number, raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(f"{path}:{line_number}: invalid UTF-8 ({error.reason} at byte {error.start})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path}:{line_number + 1}: truncated or corrupt gzip ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({type(error).__name__}: {error})") from None
