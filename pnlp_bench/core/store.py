"""The results store: one append-only JSON-lines file of finished run records, shared by every launcher.

A record's identity is `config_hash` (what its resolved config changes from the defaults, less the keys that do
not change the result: `pnlp_bench/core/identity.py`) plus `code_version` (the package version), so a table
knows which of its cells are
finished with the current code, whichever launcher or machine ran them. Appends take a file lock, so
concurrent sweeps can share one store without losing or interleaving lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

import pnlp_bench
from pnlp_bench.core.atomic import append_line
from pnlp_bench.core.compose import resolved_identity

def code_version() -> str:
    """The package version: bump it when a change alters results, and every finished cell is re-run.

    (Each record also keeps its git commit and dirty flag, so a table shows exactly which code ran.)"""
    return pnlp_bench.__version__


def config_hash(resolved: dict[str, Any]) -> str:
    """A resolved config's run identity (the one rule of `pnlp_bench/core/identity.py`)."""
    return resolved_identity(resolved)


def store_path(output_root: str | Path) -> Path:
    return Path(output_root) / "store" / "records.jsonl"


def append(output_root: str | Path, record: dict[str, Any]) -> None:
    path = store_path(output_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True)
    with FileLock(str(path) + ".lock"):
        append_line(path, line)  # whole or not at all: a torn line would swallow the next record too


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


def failures(output_root: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest `failed` record per identity (a run that could not run here, and why)."""
    latest = {}
    for record in records(output_root):
        if record.get("status") == "failed" and "config_hash" in record:
            latest[(record["config_hash"], record["code_version"])] = record
    return latest


def finished(output_root: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest finished record per (config_hash, code_version)."""
    latest = {}
    for record in records(output_root):
        if record.get("status") == "finished":
            latest[(record["config_hash"], record["code_version"])] = record
    return latest


def rehash(output_root: str | Path) -> int:
    """Re-key finished records whose identity rule changed since they ran (an option made ignored, the rule itself).

    Each record's own `config.yaml` (in its run folder) is hashed with today's rule; where that differs from
    the stored hash, a copy of the record is appended under the new hash, marked `rehashed_from`. Metrics,
    provenance and the old lines are untouched. Returns the number of records re-keyed."""
    from omegaconf import OmegaConf

    current = {key for key, _ in finished(output_root)}
    count = 0
    for (old_hash, version), record in finished(output_root).items():
        config = Path(record.get("run_dir", "")) / "config.yaml"
        if version != code_version() or not config.is_file():
            continue
        new_hash = config_hash(OmegaConf.to_container(OmegaConf.load(config), resolve=True))
        if new_hash != old_hash and new_hash not in current:
            append(output_root, {**record, "config_hash": new_hash, "rehashed_from": old_hash})
            current.add(new_hash)
            count += 1
    return count
