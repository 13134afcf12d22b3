"""One run per run folder at a time.

Two launches of the same configuration (a sweep started twice, a job resubmitted while the first still runs)
resolve to the same run folder; training both into it would interleave their checkpoints and records. The
first holds an OS-level lock on `<run folder>/.run.lock` for as long as it runs; a second is refused at once
with one line naming the folder and the holder. The OS drops the lock when the holder exits in any way
(SIGKILL included), so a dead holder's lock file never blocks anyone.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from pnlp_bench.core.atomic import write_text_atomic
from pnlp_bench.core.errors import OneLineError

LOCK_NAME = ".run.lock"
# Who holds the lock, for the refusal message. A file of its own: a process trying the lock may truncate
# the lock file itself (filelock opens it with O_TRUNC on some versions), which would erase the holder.
HOLDER_NAME = ".run.holder"


class RunFolderBusy(OneLineError):
    """Another process is training into this run folder."""


def holder_of(run_dir: Path) -> str:
    try:
        return (run_dir / HOLDER_NAME).read_text().strip() or "another process"
    except OSError:  # the holder has just taken the lock and not yet said who it is, or has just let go
        return "another process"


@contextmanager
def hold_run_folder(run_dir: Path) -> Iterator[None]:
    """Holds `run_dir` for the duration of the block, or raises `RunFolderBusy` without waiting."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFolderBusy(
            f"{run_dir} is in use by {holder_of(run_dir)}: not training a second run into the same folder "
            "(run again once it has ended; a finished run is not trained twice)"
        ) from None
    try:
        write_text_atomic(run_dir / HOLDER_NAME, f"pid {os.getpid()} on {socket.gethostname()}\n")
        yield
    finally:
        with suppress(OSError):
            (run_dir / HOLDER_NAME).unlink(missing_ok=True)
        lock.release()
