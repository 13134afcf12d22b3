"""`bench runs [--output-root DIR] [--data X] [--model Y] [--group-by KEY,…] [--metric NAME] [--json]`: the run
folders under `<output_root>/runs`, newest first, from their own files (pnlp_bench/core/run_index.py):
data, model, the overrides that differ from the presets' defaults, status, the best eval score, the chosen
metric of finished runs, wall time and date. `--group-by` aggregates the finished runs of an ad-hoc sweep
by config keys (`model`, `size.num_layers`, `projection.name`) into mean ± std over seeds, with n."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pnlp_bench.core.run_index import RunInfo, group_runs, list_runs


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def fmt_value(value: Any) -> str:
    """As an override is typed: `true`, `null`, `[en,de]`, strings bare."""
    if isinstance(value, list):
        return "[" + ",".join(fmt_value(item) for item in value) + "]"
    return value if isinstance(value, str) else json.dumps(value)


def fmt_number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def runs_table(runs: list[RunInfo], output_root: Path) -> Table:
    # a name every row shares goes into the header, so the rows keep their width for the overrides
    monitors, metrics = {run.monitor for run in runs}, {run.metric for run in runs if run.score is not None}
    best_header = f"best eval {next(iter(monitors))}" if len(monitors) == 1 else "best eval"
    score_header = next(iter(metrics)) if len(metrics) == 1 else "score"
    table = Table(title=f"runs in {output_root / 'runs'} (newest first)")
    numeric = ("seed", best_header, score_header, "wall")
    for column in ("date", "data", "model", "run", "seed", "overrides", "status", best_header, score_header, "wall"):
        table.add_column(column, justify="right" if column in numeric else "left", no_wrap=column != "overrides",
                         min_width=30 if column == "overrides" else None, max_width=60 if column == "overrides" else None)
    for run in runs:
        overrides = " ".join(f"{key}={fmt_value(value)}" for key, value in sorted(run.overrides.items()))
        error = run.error if len(run.error) <= 40 else run.error[:39] + "…"  # --json has it whole
        status = run.status + (f": {error}" if error else "")
        best = "—" if run.best is None else f"{run.best:.2f} @{run.best_epoch}"
        if run.best is not None and len(monitors) > 1:
            best = f"{run.monitor} {best}"
        score = "—" if run.score is None else (f"{run.score:.2f}" if len(metrics) == 1 else f"{run.metric} {run.score:.2f}")
        # escaped: rich would read `[en]` in data.languages=[en] as markup and print nothing
        table.add_row(run.date[:16].replace("T", " "), run.data, run.model, Path(run.folder).name.rsplit("-", 1)[-1],
                      "—" if run.seed is None else str(run.seed), escape(overrides) or "—", escape(status), best, score,
                      fmt_seconds(run.wall_seconds))
    return table


def groups_table(groups: list[dict[str, Any]], keys: list[str], runs: int) -> Table:
    table = Table(title=f"finished runs grouped by {', '.join(keys)} ({runs} runs listed)")
    for key in keys:
        table.add_column(key)
    for column in ("metric", "mean ± std", "n", "seeds", "also varies"):
        table.add_column(column, justify="right" if column in ("mean ± std", "n") else "left")
    for group in groups:
        spread = f"{group['mean']:.2f} ± {group['std']:.2f}" if group["std"] is not None else f"{group['mean']:.2f} (n=1)"
        table.add_row(*(escape(fmt_value(group[key])) for key in keys), ", ".join(group["metric"]), spread, str(group["n"]),
                      ", ".join(map(str, group["seeds"])), escape(", ".join(group["varies"])) or "—")
    return table


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench runs", description="List run folders; aggregate a sweep by config keys.")
    parser.add_argument("--output-root", type=Path, default=Path(os.environ.get("BENCH_OUTPUT_ROOT", "outputs")))
    parser.add_argument("--data", help="only this data set (a shell pattern: mtop*)")
    parser.add_argument("--model", help="only this model preset (a shell pattern: mixer_*)")
    parser.add_argument("--group-by", help="comma-separated config keys (model, data, size.num_layers, projection.name, …)")
    parser.add_argument("--metric", help="NAME, split/NAME or split/language/NAME (default: each run's monitor on test/avg)")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    args = parser.parse_args(list(argv))
    runs = list_runs(args.output_root, args.data, args.model, args.metric)
    keys = [key.strip() for key in (args.group_by or "").split(",") if key.strip()]
    # off a terminal (a pipe, a log) rich would wrap at 80 columns: a run's row is wider than that
    console = Console() if sys.stdout.isatty() else Console(width=220)
    if keys:
        groups = group_runs(runs, keys)
        if args.json:
            print(json.dumps(groups, indent=1))
        else:
            console.print(groups_table(groups, keys, len(runs)))
        return 0
    if args.json:
        print(json.dumps([run.to_json() for run in runs], indent=1))
    elif not runs:
        console.print(f"no run folders in {args.output_root / 'runs'}")
    else:
        console.print(runs_table(runs, args.output_root))
    return 0
