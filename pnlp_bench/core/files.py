"""Reading the data sets' files, for both families: one error type and one line reader.

`DataError` is missing or malformed data, said in one line naming the file (and line); `iter_lines` reads
a plain or gzipped UTF-8 file line by line and reports bad bytes and truncated archives that way."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path


class DataError(RuntimeError):
    """Missing or malformed data, reported in one line that names the file (and line)."""


def find_root(candidates: list[Path], probe: str, what: str, how: str) -> Path:
    """The first candidate folder holding `probe` (a relative path); else a one-line error naming them."""
    for candidate in candidates:
        if (candidate / probe).exists() or (candidate / (probe + ".gz")).exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(f"{what} not found (looked for {probe}[.gz] in: {looked}); {how}")


def iter_lines(path: Path, keep_newline: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, text) of a plain or gzipped UTF-8 file, without the line's end unless `keep_newline`.

    Decoding is per line, so invalid UTF-8 and a truncated gzip stream are reported as one line naming the
    file and the line where they occur (a truncated stream: the line after the last one read intact), never
    as a traceback from inside the codec.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    line_number = 0
    try:
        with opener(path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(f"{path}:{line_number}: invalid UTF-8 ({error.reason} at byte {error.start})") from None
                yield line_number, text if keep_newline else text.rstrip("\n").rstrip("\r")
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path}:{line_number + 1}: truncated or corrupt gzip ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def read_lines(path: Path) -> list[str]:
    return [text for _, text in iter_lines(path)]
