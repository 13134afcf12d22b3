"""What the run folders under `<output_root>/runs` hold, read from their files alone (`bench runs`).

A run folder (`runs/<data>/<model>-<identity>`, either family) says where it stands through its files:
`metrics.json` (the finished record, or `status: failed` with the error), `history.jsonl` (one line per
finished epoch, core/run_log.py), `config.yaml` (the resolved config), `.run.holder` (who trains into it
now, core/run_lock.py). So a run is finished, failed, running (its holder is alive), or interrupted after
its last epoch line.

`group_runs` aggregates finished runs of an ad-hoc sweep by config keys into mean ± std over their seeds,
as `bench table` does for a table's cells (one run: no std, never a made-up 0.0).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pnlp_bench.core.identity import changed_keys, flatten, with_keys_of_then
from pnlp_bench.core.record import WHOLE_SPLIT, RunRecord, compute_seconds, epoch_seconds
from pnlp_bench.core.run_lock import HOLDER_NAME

# Files a run folder may hold; the newest of them dates an unfinished run.
RUN_FILES = ("metrics.json", "history.jsonl", "last.pt", "best.pt", "config.yaml", "run.log")
# Keys that are not a run's setting but its place in a sweep (what a group aggregates over).
PER_RUN_KEYS = ("seed",)


@dataclass
class RunInfo:
    folder: str
    data: str
    model: str
    status: str  # finished, failed, running, interrupted at epoch k
    seed: int | None
    overrides: dict[str, Any]  # what the config changes from its data and model presets' defaults
    monitor: str | None
    best: float | None  # the best eval value of the monitor (what chose best.pt)
    best_epoch: int | None
    epochs_done: int
    score: float | None  # the chosen metric of a finished run (default: test / avg / monitor)
    metric: str | None
    wall_seconds: float | None
    date: str  # ISO 8601, UTC
    error: str = ""
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # flattened, for --group-by

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "config"}


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _history(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    rows.append(json.loads(line))
                except ValueError:  # a line torn by a kill mid-write
                    continue
    except OSError:
        return []
    return [row for row in rows if isinstance(row, dict)]


def recent_pace(folder: Path, last: int = 3) -> float | None:
    """The mean measured seconds of a run's last `last` epochs: the pace of its latest process (a resumed run
    may have changed threads or machine since its first epochs), or None before its first epoch."""
    rows = sorted((row for row in _history(folder / "history.jsonl") if isinstance(row.get("epoch"), int)),
                  key=lambda row: row["epoch"])[-last:]
    return sum(epoch_seconds(row) for row in rows) / len(rows) if rows else None


def _config(folder: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    try:
        loaded = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"), resolve=True)
    except Exception:  # noqa: BLE001  (an unreadable or unresolvable config: the listing shows no overrides)
        return {}
    return with_keys_of_then(loaded) if isinstance(loaded, dict) else {}


def holder_alive(folder: Path) -> bool:
    """Whether the process named in `.run.holder` still runs (a SIGKILLed holder leaves the file behind)."""
    try:
        words = (folder / HOLDER_NAME).read_text().split()
    except OSError:
        return False
    if len(words) < 4 or words[0] != "pid" or not words[1].isdigit():
        return False
    if words[3] != socket.gethostname():
        return True  # held from another machine: cannot check, so believe it
    try:
        os.kill(int(words[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def preset_defaults(data: str, model: str) -> dict[str, Any]:
    """The resolved config of `bench run data=<data> model=<model>`: what a run's overrides are told against
    (its preset's own values are not overrides); today's defaults where the presets no longer compose."""
    from pnlp_bench.core.compose import compose, default_config, options

    try:
        return options(compose([f"data={data}", f"model={model}"]))
    except Exception:  # noqa: BLE001  (a renamed preset, a config of another code version)
        return default_config()


def _date(record: dict[str, Any] | None, folder: Path) -> str:
    date = str(((record or {}).get("provenance") or {}).get("date", ""))
    if date:
        return date
    times = [(folder / name).stat().st_mtime for name in RUN_FILES if (folder / name).exists()]
    stamp = max(times, default=folder.stat().st_mtime)
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


def parse_metric(metric: str | None, monitor: str | None) -> tuple[str, str, str] | None:
    """`split/language/name`, `split/name` or `name` (test split, whole-split average), or the monitor on test."""
    name = metric or monitor
    if not name:
        return None
    parts = name.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], WHOLE_SPLIT, parts[1]
    return "test", WHOLE_SPLIT, name


def read_run(folder: Path, metric: str | None = None) -> RunInfo:
    """One run folder's state from its files."""
    record = _json(folder / "metrics.json")
    config = _config(folder)
    history = _history(folder / "history.jsonl") or list((record or {}).get("history") or [])
    data = str((record or {}).get("data") or folder.parent.name)
    model = str((record or {}).get("model") or folder.name.rsplit("-", 1)[0])
    monitor = (record or {}).get("monitor") or ((record or {}).get("best") or {}).get("monitor")
    monitor = monitor or (config.get("data") or {}).get("monitor")
    values = [(row[f"eval_{monitor}"], row.get("epoch")) for row in history if f"eval_{monitor}" in row]
    best, best_epoch = max(values, key=lambda pair: pair[0]) if values else (None, None)
    epochs_done = max((int(row.get("epoch", 0)) for row in history), default=0)
    status, error = "interrupted", ""
    if record is not None and record.get("status") == "finished":
        status = "finished"
    elif record is not None and record.get("status") == "failed":
        status, error = "failed", str(record.get("error", "")).splitlines()[0] if record.get("error") else ""
    elif holder_alive(folder):
        status = "running"
    if status in ("running", "interrupted"):
        status += f" at epoch {epochs_done}" if epochs_done else " before its first epoch"
    if status.startswith("interrupted") and not (folder / "last.pt").exists():
        status = "interrupted before its first epoch"
    score, chosen = None, parse_metric(metric, monitor)
    if status == "finished" and chosen is not None:
        score = RunRecord.from_json(record).metric(*chosen)
    wall = compute_seconds(record) if status == "finished" and record and "wall_seconds" in record else None
    if wall is None and history:  # an unfinished run: the time its recorded epochs took
        wall = sum(epoch_seconds(row) for row in history)
    overrides = {}
    if config:
        presets = preset_defaults(data, model)
        # what the identity hashes, less what the presets set themselves (data.subset: the sample's own name)
        preset_values = {key: json.dumps(value, sort_keys=True, default=str) for key, value in flatten(presets).items()}
        overrides = {key: value for key, value in changed_keys(config, presets).items()
                     if key not in PER_RUN_KEYS and preset_values.get(key) != json.dumps(value, sort_keys=True, default=str)}
    seed = (record or {}).get("seed", config.get("seed"))
    return RunInfo(
        folder=str(folder), data=data, model=model, status=status, seed=seed, overrides=overrides, monitor=monitor,
        best=best, best_epoch=best_epoch, epochs_done=epochs_done, score=score,
        metric="/".join(chosen) if chosen else None, wall_seconds=wall, date=_date(record, folder), error=error,
        config={**flatten(config), "data": data, "model": model},
    )


def run_folders(output_root: Path) -> list[Path]:
    """`runs/<data>/<run>` folders holding a config or a record (a sweep's own files and moved legacy folders left out)."""
    runs = output_root / "runs"
    if not runs.is_dir():
        return []
    return sorted(
        folder for data in runs.iterdir() if data.is_dir() for folder in data.iterdir()
        if folder.is_dir() and not (folder / "MOVED").exists()
        and ((folder / "config.yaml").exists() or (folder / "metrics.json").exists())
    )


def list_runs(output_root: Path, data: str | None = None, model: str | None = None, metric: str | None = None) -> list[RunInfo]:
    """Every run folder's state, newest first; `data` and `model` filter (shell patterns: `mixer_*`)."""
    from fnmatch import fnmatchcase

    runs = []
    for folder in run_folders(output_root):
        if data is not None and not fnmatchcase(folder.parent.name, data):
            continue
        if model is not None and not fnmatchcase(folder.name.rsplit("-", 1)[0], model):
            continue
        runs.append(read_run(folder, metric))
    return sorted(runs, key=lambda run: (run.date, run.folder), reverse=True)


def group_runs(runs: list[RunInfo], keys: list[str]) -> list[dict[str, Any]]:
    """Finished runs grouped by the values of `keys` (config keys, `data`, `model`), each group's metric as
    mean ± std over its runs (std None for one run), with its seeds and the other settings that vary in it."""
    groups: dict[tuple, list[RunInfo]] = {}
    for run in runs:
        if run.status == "finished" and run.score is not None:
            groups.setdefault(tuple(json.dumps(run.config.get(key), sort_keys=True) for key in keys), []).append(run)
    result = []
    for members in groups.values():
        scores = [run.score for run in members]
        settings = {key for run in members for key in run.overrides} | {"data", "model"}
        varies = sorted(key for key in settings - set(keys)
                        if len({json.dumps(run.config.get(key), sort_keys=True) for run in members}) > 1)
        result.append({
            **{key: members[0].config.get(key) for key in keys},
            "n": len(members),
            "mean": statistics.fmean(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else None,
            "metric": sorted({run.metric for run in members}),
            "seeds": sorted(run.seed for run in members if run.seed is not None),
            "varies": varies,  # settings besides the seed that differ inside the group: worth a look
            "folders": [run.folder for run in members],
        })
    return sorted(result, key=lambda group: [json.dumps(group[key], sort_keys=True) for key in keys])
