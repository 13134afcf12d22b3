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
from pnlp_bench.core.atomic import append_line

# Keys that change where, how fast or how loudly a run happens, not what it computes.
VOLATILE_KEYS = (
    "quiet", "resume", "logger", "output_root", "trainer.device", "trainer.num_threads", "trainer.eval_batch_size",
    "trainer.resident_data", "trainer.compile", "data.root", "trainer.eval_max_positions", "backbone.padding_aware",
    "trainer.host_allocator",
)

# Keys added after cells were already run, at the value that reproduces the code before them: a key at its
# neutral value is left out of the hash, so adding an option does not orphan every finished cell. Add the key
# here when you add the option; a run that sets it to anything else hashes differently.
NEUTRAL_DEFAULTS: dict[str, Any] = {
    "init": None,
    "quantize.int8": False,
    "quantize.mode": "simulated",
    "data.eval_limit": None,
    "data.test_limit": None,
    "bottleneck.word_dropout": 0.0,
    "projection.init_std": 1.0,
    "data.head_options.decode": "argmax",
    "data.monitor_language": None,
}


def code_version() -> str:
    """The package version: bump it when a change alters results, and every finished cell is re-run.

    (Each record also keeps its git commit and dirty flag, so a table shows exactly which code ran.)"""
    return pnlp_bench.__version__


def config_hash(resolved: dict[str, Any]) -> str:
    trimmed = json.loads(json.dumps(resolved, sort_keys=True, default=str))
    for dotted in (*VOLATILE_KEYS, *NEUTRAL_DEFAULTS):
        node = trimmed
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if not isinstance(node, dict) or leaf not in node:
            continue
        if dotted in VOLATILE_KEYS or node[leaf] == NEUTRAL_DEFAULTS[dotted]:
            del node[leaf]
            # A top-level group left empty (quantize) hashes as if it had never existed; a nested mapping that
            # existed empty before its key was added (data.head_options) stays, as it was hashed then.
            if len(parents) == 1 and not node:
                del trimmed[parents[0]]
    return hashlib.sha256(json.dumps(trimmed, sort_keys=True).encode()).hexdigest()[:16]


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
    """Re-key finished records whose hash rule changed since they ran (an option made volatile or neutral).

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
