"""Files written whole or not at all: a reader sees the old content or the new one, never a part.

Every file that a later step reads back (checkpoints, run records, caches, tables, the store) is written
here. The bytes go to a temporary file beside the target (the same folder, so the rename cannot cross a
filesystem), are flushed to the disk, and the temporary file is renamed over the target in one step. On
any failure, a full disk, a quota, Ctrl-C, the temporary file is removed and the target is left as it was.
OS errors come back as one `WriteError` naming the target: `cannot write runs/x/last.pt: No space left on
device`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from pnlp_bench.core.errors import OneLineError


class WriteError(OneLineError, OSError):
    """A file could not be written; its message names the file and the OS's reason."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(f"cannot write {path}: {cause.strerror or cause}")
        # Kept for callers that branch on the cause (ENOSPC, EACCES); not passed to OSError, whose
        # str() would then become "[Errno 28] ..." instead of the message above.
        self.errno = cause.errno
        self.path = path


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """`write(handle)` fills a temporary file that then replaces `path`; the folder must exist."""
    path = Path(path)
    # pid and a random part: two processes (or threads) writing the same target never share a temporary file
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(partial, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not reach the disk before the bytes (a crash leaves old or new)
        os.replace(partial, path)
    except BaseException as error:
        with suppress(OSError):  # removing it may fail too (a vanished folder); the first error is the one to tell
            partial.unlink(missing_ok=True)
        cause = os_error_in(error)
        if cause is not None and not isinstance(error, WriteError):
            raise WriteError(path, cause) from error
        raise


def os_error_in(error: BaseException) -> OSError | None:
    """The OS error behind `error`: itself, or one it was raised while handling. torch.save's zip writer,
    closing after a failed write, raises `RuntimeError: [enforce fail ...] unexpected pos` over the ENOSPC."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        if isinstance(seen, (KeyboardInterrupt, SystemExit)):
            return None  # an interrupt stays an interrupt, whatever it interrupted
        seen = seen.__cause__ or seen.__context__
    return None


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """`payload` as indented JSON (the layout of every record and table the project writes)."""
    write_text_atomic(path, json.dumps(payload, indent=1))


def save_torch_atomic(path: str | Path, payload: Any) -> None:
    """`torch.save` through a Python file handle: given a path, torch's own writer turns a full disk into an
    opaque `RuntimeError: [enforce fail at inline_container.cc] ... unexpected pos`; through a handle the
    OS's error (ENOSPC) arrives as it is."""
    import torch  # here, not at the top: the store and the tables use this module without torch

    write_atomic(path, lambda handle: torch.save(payload, handle))


def append_line(path: str | Path, line: str) -> None:
    """Appends `line` (and a newline) whole, or leaves the file as it was.

    A torn line would not only be lost: the next append would be glued to it and lost with it. So a failed
    append is cut off again. Concurrent appenders must hold a lock around this (the store takes one)."""
    path = Path(path)
    data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
    try:
        with open(path, "ab", buffering=0) as handle:  # unbuffered: nothing left to flush (and fail) at close
            start = os.fstat(handle.fileno()).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[handle.write(view) :]
                os.fsync(handle.fileno())
            except BaseException:
                with suppress(OSError):
                    os.ftruncate(handle.fileno(), start)
                raise
    except OSError as error:
        if isinstance(error, WriteError):
            raise
        raise WriteError(path, error) from error
