"""The results store: one append-only JSON-lines file of finished run records, shared by every launcher.

A record's identity is `config_hash` (the resolved config minus keys that do not change the result) plus
`code_version` (the package version), so a table knows which of its cells are
finished with the current code, whichever launcher or machine ran them. Appends take a file lock, so
concurrent sweeps can share one store without losing or interleaving lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

import pnlp_bench

# Keys that change where, how fast or how loudly a run happens, not what it computes.
VOLATILE_KEYS = (
    "quiet", "resume", "logger", "output_root", "trainer.device", "trainer.num_threads", "trainer.eval_batch_size",
    "trainer.resident_data", "trainer.compile", "data.root",
)


def code_version() -> str:
    """The package version: bump it when a change alters results, and every finished cell is re-run.

    (Each record also keeps its git commit and dirty flag, so a table shows exactly which code ran.)"""
    return pnlp_bench.__version__


def config_hash(resolved: dict[str, Any]) -> str:
    trimmed = json.loads(json.dumps(resolved, sort_keys=True, default=str))
    for dotted in VOLATILE_KEYS:
        node = trimmed
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(trimmed, sort_keys=True).encode()).hexdigest()[:16]


def store_path(output_root: str | Path) -> Path:
    return Path(output_root) / "store" / "records.jsonl"


def append(output_root: str | Path, record: dict[str, Any]) -> None:
    path = store_path(output_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with FileLock(str(path) + ".lock"):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()


def records(output_root: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete record; a torn last line (a writer killed mid-append) is passed over."""
    path = store_path(output_root)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def finished(output_root: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest finished record per (config_hash, code_version)."""
    latest = {}
    for record in records(output_root):
        if record.get("status") == "finished":
            latest[(record["config_hash"], record["code_version"])] = record
    return latest
