"""The results store: append-only JSON-lines files of run records, shared by every launcher.

A record's identity is `config_hash` (what its resolved config changes from the defaults, less the keys that do
not change the result: `pnlp_bench/core/identity.py`) plus `code_version` (the package version), so a table
knows which of its cells are finished with the current code, whichever launcher or machine ran them.

Two files hold records:
- the local store, `<output_root>/store/records.jsonl`: every run appends its record there (git-ignored, with
  the run folders and checkpoints beside it);
- the committed records, `results/records.jsonl`: the records behind the tables, kept in the repository so a
  fresh clone renders every table, lists its coverage and draws its curves. `bench table` and `bench reproduce`
  copy each finished (or failed) cell of a table there, with its per-epoch history, checkpoints left out.
Readers see both. Where one identity has several records (a re-run, two branches merged) the latest wins by
its provenance date, then by its content, so the choice does not depend on the order of the lines: the
committed file merges as a union of lines (`.gitattributes`: merge=union) without conflicts.
Appends take a file lock, so concurrent sweeps can share one store without losing or interleaving lines.
"""

from __future__ import annotations

import hashlib
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


COMMITTED = "records.jsonl"


def committed_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / COMMITTED


_PARSED: dict[Path, tuple[bytes, list[dict[str, Any]]]] = {}


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every complete record of one file; a torn last line (a writer killed mid-append) is passed over.

    Parsed once per content of the file in a process (a digest of its bytes, since a rewrite within one clock
    tick can keep its size and modification time): `bench tables` asks for every table's finished cells, and
    parsing the committed records once per table took about half of its time. A long `bench reproduce` still
    sees every run that finishes. Callers treat the records as read-only."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    digest = hashlib.blake2b(data, digest_size=16).digest()
    key = path.resolve()
    cached = _PARSED.get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    parsed = []
    for line in data.decode("utf-8", errors="replace").split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            parsed.append(record)
    _PARSED[key] = (digest, parsed)
    return parsed


def records(output_root: str | Path, results_dir: str | Path | None = None) -> Iterator[dict[str, Any]]:
    """Every complete record: the committed ones (with `results_dir`), then the local store's."""
    if results_dir is not None:
        yield from _lines(committed_path(results_dir))
    yield from _lines(store_path(output_root))


def _date(record: dict[str, Any]) -> str:
    return str((record.get("provenance") or {}).get("date", ""))


def _recency(record: dict[str, Any]) -> tuple[str, str]:
    """Which of two records of one identity wins: the later provenance date, then the content (deterministic)."""
    return _date(record), json.dumps(record, sort_keys=True)


def _latest(records: Iterator[dict[str, Any]], status: str) -> dict[tuple[str, str], dict[str, Any]]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.get("status") != status or "config_hash" not in record:
            continue
        key = (record["config_hash"], record["code_version"])
        if key not in latest or _recency(record) > _recency(latest[key]):
            latest[key] = record
    return latest


def failures(output_root: str | Path, results_dir: str | Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest `failed` record per identity (a run that could not run here, and why)."""
    return _latest(records(output_root, results_dir), "failed")


def finished(output_root: str | Path, results_dir: str | Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest finished record per (config_hash, code_version)."""
    return _latest(records(output_root, results_dir), "finished")


def with_history(record: dict[str, Any]) -> dict[str, Any]:
    """The record as committed: with the per-epoch history of its run folder's metrics.json (for the curves)."""
    if "history" in record or record.get("status") != "finished":
        return record
    metrics = Path(record.get("run_dir", "")) / "metrics.json"
    try:
        history = json.loads(metrics.read_text()).get("history", [])
    except (OSError, ValueError):
        return record
    return {**record, "history": history}


def commit(results_dir: str | Path, new: list[dict[str, Any]]) -> int:
    """Copy records into the committed file, each once (a record already there, by identity, seed, date and
    status, is not added again). Returns how many were added."""
    path = committed_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)

    def key(record: dict[str, Any]) -> tuple:
        return (record.get("config_hash"), record.get("code_version"), record.get("seed"), record.get("status"), _date(record))

    added = 0
    with FileLock(str(path) + ".lock"):
        present = {key(record) for record in _lines(path)}
        for record in new:
            if key(record) in present:
                continue
            append_line(path, json.dumps(with_history(record), sort_keys=True))
            present.add(key(record))
            added += 1
    return added


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
