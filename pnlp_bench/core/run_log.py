"""What a run says while it runs, where no terminal shows a progress bar (a SLURM or CI log, Hydra's
`run.log`): one plain line per epoch (or evaluation) through `logging`, and one JSON line per epoch in the
run folder's `history.jsonl`, flushed as it is written, so a killed run keeps the history it computed.

Hydra's job logging sends the `pnlp_bench.train` lines to the console and to `<run folder>/run.log`; without
Hydra (a test calling the trainer) INFO lines go nowhere unless the caller configures logging.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pnlp_bench.core.atomic import append_line, write_text_atomic

LOGGER = logging.getLogger("pnlp_bench.train")
HISTORY_NAME = "history.jsonl"


def clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


def read_history(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a history file; a torn last line (a writer killed mid-line) is passed over."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class ProgressLog:
    """Per-epoch lines and `history.jsonl` for one training loop.

    `unit` names what is counted ("epoch", "step") and keys the rows; `run_dir=None` (a rank other than the
    main one, whose rows the main rank writes) logs nothing and writes nothing."""

    def __init__(self, run_dir: Path | None, total: int, unit: str = "epoch") -> None:
        self.path = run_dir / HISTORY_NAME if run_dir is not None else None
        self.total = total
        self.unit = unit
        self.started = time.perf_counter()
        self.first_done = 0

    def start(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Makes `history.jsonl` hold exactly `history` (the rows a resumed checkpoint carries; [] when the
        loop starts from scratch, so lines of an earlier, discarded training do not stay) and returns it.

        A row already in the file is kept as written there: the file gets each row after the checkpoint
        was saved, so its rows can hold fields (the checkpoint's own duration) that the checkpoint's lack."""
        self.started = time.perf_counter()
        self.first_done = int(history[-1][self.unit]) if history else 0
        if self.path is None:
            return history
        written = {row.get(self.unit): row for row in read_history(self.path)}
        rows = [written.get(row[self.unit], row) for row in history]
        write_text_atomic(self.path, "".join(json.dumps(row) + "\n" for row in rows))
        return rows

    def record(self, row: dict[str, Any], summary: str) -> None:
        """Appends `row` to `history.jsonl` and logs `<unit> k/N: <summary>, elapsed …, ETA …`."""
        if self.path is None:
            return
        append_line(self.path, json.dumps(row))
        done = int(row[self.unit])
        elapsed = time.perf_counter() - self.started
        # the mean pace of this process's own epochs (a resumed run's earlier ones ran elsewhere or before)
        pace = elapsed / max(done - self.first_done, 1)
        LOGGER.info(
            "%s %d/%d: %s, elapsed %s, ETA %s", self.unit, done, self.total, summary, clock(elapsed),
            clock(pace * max(self.total - done, 0)),
        )


@contextmanager
def logging_above(progress: Any) -> Iterator[Any]:
    """Enters a rich `Progress` so that log lines print above its live bars instead of through them.

    On a terminal rich redirects sys.stdout and sys.stderr while the bars are live, but a logging handler
    keeps the stream it was given (Hydra's console handler: the real sys.stdout), and its lines would be
    overdrawn by the bars' next refresh. For the duration, such handlers write to rich's redirected streams."""
    before = {"stdout": sys.stdout, "stderr": sys.stderr}
    with progress:
        swapped = []
        for handler in logging.getLogger().handlers:
            if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
                continue
            for name, original in before.items():
                redirected = getattr(sys, name)
                if handler.stream is original and redirected is not original:
                    swapped.append((handler, handler.setStream(redirected)))
        try:
            yield progress
        finally:
            for handler, original in swapped:
                handler.setStream(original)
