"""`bench reproduce`: run what the tables still miss, in the paper's priority order, within a time budget.

It plans every table's cells at one budget (`--budget paper`: the paper's protocol), leaves out the finished
ones (the local store and the committed records, `results/records.jsonl`) and the ones that failed with this
code (`--retry-failed` runs them again), and runs the rest as separate `bench run` processes, `--jobs` at a
time with `--threads` each. Order: seed 0 of every table first (Table 6, then 1, 2, 3, 4, 5, 7), then the
other seeds of Tables 6 and 5 (the tables whose targets ask for seeds 0-2), then the other seeds of the rest;
`--seeds 0` keeps seed 0 only, `--only data=hyperpartisan` the cells whose command holds that override. A cell
two tables share (BASE is in Tables 1 to 4) runs once.

After each cell: one progress line (coverage of its table; ETA from the estimates of the cells left, as the
dry run makes them), its record copied into the committed records, and its table re-rendered into
`results/`; every `--progress-minutes` (10), one line per running cell (epochs done, best eval so far, time
left at the pace of its last epochs), so a log of hours shows where it stands.
At the time budget (`--hours`) the cells still running are stopped (each goes on from its last finished epoch
next time) and nothing new starts. Killed, it stops its runs with it (they die with their parent) and a new
`bench reproduce` continues with what is missing. `--dry-run` prints the plan with an estimate per cell and
per table (`estimate`: measured for a row that ran at this budget, rough for one that ran only at another,
rougher for one that ran only on other data: `scale_by_other_rows`; `--check-estimates` says how rough).
`--fit` starts only the cells whose estimate fits in the time left (where a stopped run's folder will not
outlive the job: node-local scratch, a machine that is wiped between sessions); the others are left out, and
said so.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pnlp_bench.commands import table as tables
from pnlp_bench.core import run_index, store
from pnlp_bench.core.record import compute_seconds
from pnlp_bench.core.registry import ConfigError

PRIORITY = ("6", "1", "2", "3", "4", "5", "7")
# after seed 0 everywhere: the other seeds of these tables first (the targets ask Tables 5 and 6 for seeds 0-2)
MORE_SEEDS_FIRST = ("6", "5")


@dataclass
class Cell:
    table: str
    row: str
    seed: int
    overrides: list[str]
    identity: tuple[str, str]
    also_in: tuple[str, ...] = ()
    # a finished record of the same row on the same data (the same fold at another seed first, else another
    # fold), and which run it is ("seed 1", "fold 2 at seed 0"): what the dry run's estimate reads
    sibling: dict | None = None
    sibling_is: str = ""
    # else a finished record of the same row and data at another budget of the table (fewer epochs, fewer
    # examples), and that budget's name: the estimate scales its pace to this cell's epochs and examples
    paced_by: dict | None = None
    paced_budget: str = ""
    epochs: int | None = None
    # else, more roughly, `paced_by` is another row's record on the same data, and `scale` this row's pace over
    # that row's where both ran (`scaled_from` says where: "table 5 at budget 'cpu'")
    scale: float | None = None
    scaled_from: str = ""
    paced_row: str = ""

    @property
    def name(self) -> str:
        shared = f" (also in table {', '.join(self.also_in)})" if self.also_in else ""
        return f"table {self.table} · {self.row} · seed {self.seed}{shared}"


def run_order(cells: list[Cell], names: list[str]) -> list[Cell]:
    """Seed 0 across the tables (in `names`' order), then the other seeds of MORE_SEEDS_FIRST, then the rest's."""
    order = {name: index for index, name in enumerate(names)}
    later = lambda cell: cell.seed != 0 and cell.table not in MORE_SEEDS_FIRST  # noqa: E731
    return sorted(cells, key=lambda cell: (cell.seed != 0, later(cell), cell.seed, order[cell.table]))


def plan_cells(names: list[str], budget: str, output_root: Path, results_dir: Path, retry_failed: bool,
               say=print, seeds: set[int] | None = None, only: list[str] | None = None) -> list[Cell]:
    """The cells to run, in run_order; each identity once; only `seeds` when given, and only the cells whose
    overrides hold every one of `only` when given (an override no cell of the tables has is an error: a typo
    must not read as "nothing left to run")."""
    wanted = set(only or [])
    unseen = set(wanted)
    done = store.finished(output_root, results_dir)
    failed = {} if retry_failed else store.failures(output_root, results_dir)
    by_identity: dict[tuple[str, str], Cell] = {}
    unpaced: list[tuple[Cell, tuple[str, ...], tuple[str, tuple[str, ...]]]] = []
    for name in names:
        spec = tables.load_spec(name)
        if budget not in spec.budgets:
            say(f"table {name}: no {budget!r} budget in {spec.path.name}; left out")
            continue
        absent = tables.missing_data(spec)
        if absent:
            say(f"table {name}: data not found ({', '.join(absent)}); left out")
            continue
        cells, _ = tables.plan(spec, budget, output_root, results_dir)
        measured: dict[tuple, tuple[dict, str]] = {}
        paced = other_budgets(spec, budget, output_root, results_dir, done)

        for row, group, seed, _, identity in cells:
            if identity in done:
                same_data = spec.any_fold(group)
                fold = [override.split("=", 1)[1] for override in group if override not in same_data]
                keep(measured, (row.name, group), (done[identity], f"seed {seed}"))
                keep(measured, (row.name, same_data),
                     (done[identity], f"fold {fold[0]} at seed {seed}" if fold else f"seed {seed}"))
        for row, group, seed, overrides, identity in cells:
            unseen -= set(overrides)
            if identity in done or (seeds is not None and seed not in seeds) or not wanted <= set(overrides):
                continue
            if identity in failed:
                say(f"table {name} · {row.name} · seed {seed}: failed before ({failed[identity].get('error', '?')}); "
                    "left out (--retry-failed runs it)")
                continue
            if identity in by_identity:
                first = by_identity[identity]
                first.also_in = (*first.also_in, name) if name != first.table and name not in first.also_in else first.also_in
                continue
            sibling, sibling_is = measured.get((row.name, group)) or measured.get((row.name, spec.any_fold(group)),
                                                                                  (None, ""))
            cell = Cell(name, row.name, seed, overrides, identity, sibling=sibling, sibling_is=sibling_is)
            if sibling is None and (row.name, spec.any_fold(group)) in paced:
                cell.paced_by, cell.paced_budget = paced[(row.name, spec.any_fold(group))]
                cell.epochs = tables.planned_epochs(tuple(overrides))
            elif sibling is None:
                unpaced.append((cell, tuple(sorted(row.overrides)), (name, spec.any_fold(group))))
            by_identity[identity] = cell
    if unpaced:
        scale_by_other_rows(unpaced, budget, output_root, results_dir, done)
    if unseen:
        raise ConfigError(f"--only {sorted(unseen)[0]!r}: no cell of table(s) {', '.join(names)} at budget {budget!r} "
                          "has this override (write it as the dry run prints a cell's command)")
    return run_order(list(by_identity.values()), names)


def keep(found: dict, key: tuple, entry: tuple[dict, str]) -> None:
    """found[key] = entry (a record and what it is), unless found has one: the first, unless a later one ran on
    this machine."""
    if key not in found or (not measured_here(found[key][0]) and measured_here(entry[0])):
        found[key] = entry


def other_budgets(spec, budget: str, output_root: Path, results_dir: Path, done: dict) -> dict[tuple, tuple[dict, str]]:
    """(row, data with any fold) -> a finished record of it at another budget of `spec`, and that budget (one
    measured on this machine first, else the first budget's first): what an estimate scales when nothing of
    the row has run at `budget` yet."""
    found: dict[tuple, tuple[dict, str]] = {}
    for other in spec.budgets:
        if other == budget:
            continue
        for row, group, _, _, identity in tables.plan(spec, other, output_root, results_dir)[0]:
            if identity in done:
                keep(found, (row.name, spec.any_fold(group)), (done[identity], other))
    return found


def runs_by_row(output_root: Path, results_dir: Path, done: dict) -> dict[tuple[str, ...], dict[tuple, tuple[dict, str]]]:
    """A row's overrides (sorted) -> {(table, data with any fold): (a finished record, its budget)} over every
    numbered table at every budget: where each model ran. The same overrides in two tables are the same model
    (Tables 5, 6 and 7 share their size presets)."""
    found: dict[tuple[str, ...], dict[tuple, tuple[dict, str]]] = {}
    for path in tables.spec_files():
        name = tables.table_name(path)
        if not name.isdigit():
            continue
        spec = tables.load_spec(name)
        for budget in spec.budgets:
            try:
                cells = tables.plan(spec, budget, output_root, results_dir)[0]
            except ConfigError:
                continue
            for row, group, _, _, identity in cells:
                if identity in done:
                    keep(found.setdefault(tuple(sorted(row.overrides)), {}), (name, budget, spec.any_fold(group)),
                         (done[identity], budget))
    return found


def estimate_check(names: list[str], budget: str, output_root: Path, results_dir: Path) -> list[str]:
    """How rough `scale_by_other_rows` is (`bench reproduce --check-estimates`): each row of `names` that ran at
    `budget`, estimated as if it had not (another row's run on the same data, times the two rows' pace ratio
    wherever both ran), against the compute its record measured. One line per (row, reference row, place)."""
    done = store.finished(output_root, results_dir)
    by_row = runs_by_row(output_root, results_dir, done)
    lines = set()
    for key, places in by_row.items():
        for (table, ran_at, data), (record, _) in places.items():
            if table not in names or ran_at != budget:
                continue
            spec = tables.load_spec(table)
            name_of = {tuple(sorted(row.overrides)): row.name for row in spec.rows}
            measured = compute_seconds(store.with_history(record))
            for other, their_places in by_row.items():
                reference = next((entry for (t, _, d), entry in their_places.items() if (t, d) == (table, data)), None)
                if other == key or reference is None or not measured:
                    continue
                paced = paced_seconds(reference[0], record.get("epochs") or 1)
                for place, _, _, ratio in (pace_ratios(places, their_places, skip_table=table) if paced else ()):
                    lines.add(f"table {table} · {name_of.get(key, key)} on {' '.join(data) or 'its data'}: measured "
                              f"{span(measured)}; from {name_of.get(other, other)} ({reference[1]!r} budget) x "
                              f"{ratio:.2f} (table {place[0]} at {place[1]!r}): {span(paced * ratio)}, "
                              f"{paced * ratio / measured:.2f}x")
    return sorted(lines)


@functools.lru_cache(maxsize=None)
def folder_history(run_dir: str) -> tuple[dict, ...]:
    """The per-epoch history in a finished run folder's metrics.json (read once per folder and command)."""
    if not run_dir:
        return ()
    return tuple(store.with_history({"status": "finished", "run_dir": run_dir}).get("history") or ())


def per_example(record: dict, split: str) -> float | None:
    """Seconds per example of `split` ("train" or "eval") in a finished run's mean epoch: its history's
    `<split>_seconds` over the examples it used; None when its history or data report lacks them."""
    # a record of the local store keeps its history in the run folder (store.with_history), a committed one inline
    history = [row for row in record.get("history") or folder_history(record.get("run_dir") or "") if isinstance(row, dict)]
    used = split_counts(record.get("data_report") or {}, split)[1]
    seconds = sum(float(row.get(f"{split}_seconds") or 0.0) for row in history)
    return seconds / len(history) / used if history and used and seconds else None


def train_pace(record: dict) -> float | None:
    """Seconds per training example of a finished run."""
    return per_example(record, "train")


def pace_ratios(ours: dict, theirs: dict, skip_table: str | None = None):
    """(place, our record, their record, our pace over theirs) at each place (table, budget, data) where both
    rows ran, `skip_table`'s places left out."""
    for place, (mine, _) in ours.items():
        if place in theirs and place[0] != skip_table:
            mine_pace, their_pace = train_pace(mine), train_pace(theirs[place][0])
            if mine_pace and their_pace:
                yield place, mine, theirs[place][0], mine_pace / their_pace


def scale_by_other_rows(unpaced: list, budget: str, output_root: Path, results_dir: Path, done: dict) -> None:
    """For the cells of a row that never ran on their data at any budget (`unpaced`: cell, its row's overrides,
    (table, data with any fold)): another row's run on the same data, scaled by this row's pace over that row's
    in a table and budget where both ran (a pair measured on one machine first, then the row nearest in cost: the
    smallest factor). Rougher than the other estimates: the ratio comes from other data, and a model's cost need
    not grow alike on short and long inputs (`estimate_check` measures how rough)."""
    by_row = runs_by_row(output_root, results_dir, done)
    for cell, row_key, (table, data) in unpaced:
        cell.epochs = tables.planned_epochs(tuple(cell.overrides))
        ours = by_row.get(row_key, {})
        best = None
        for other_key, places in by_row.items():
            here = [(place, entry) for place, entry in places.items() if place[0] == table and place[2] == data]
            if other_key == row_key or not here:
                continue
            _, reference = min(here, key=lambda item: (item[0][1] != budget, not measured_here(item[1][0])))
            for place, record, theirs, ratio in pace_ratios(ours, places):
                same_machine = record.get("provenance", {}).get("device") == theirs.get("provenance", {}).get("device")
                rank = (not same_machine, abs(math.log(ratio)))  # the row nearest in cost: the least scaled
                if best is None or rank < best[0]:
                    row_name = next((row.name for row in tables.load_spec(table).rows
                                     if tuple(sorted(row.overrides)) == other_key), "?")
                    best = (rank, reference, ratio, f"table {place[0]} at budget {place[1]!r}", row_name)
        if best is not None:
            _, (cell.paced_by, cell.paced_budget), cell.scale, cell.scaled_from, cell.paced_row = best


def split_counts(report: dict, split: str) -> tuple[int, int]:
    """A run's (whole, used) examples of `split`, from its data report: the loader counts the whole split (one
    count, or one per language as `en/train`) before the budget's per-language limit (`train_limit_per_language`)."""
    limit = report.get(f"{split}_limit_per_language") or 0
    counts = [report[split]] if isinstance(report.get(split), int) else [
        value for key, value in report.items() if key.endswith(f"/{split}") and isinstance(value, int)]
    return sum(counts), sum(min(count, limit) if limit else count for count in counts)


def paced_seconds(record: dict, epochs: int) -> float | None:
    """The time `epochs` epochs on the whole splits would take at the pace `record` trained and evaluated at
    (its seconds per training example and per eval example), or None when its report or history lacks them."""
    train, evaluate = per_example(record, "train"), per_example(record, "eval")
    if not train:
        return None
    report = record.get("data_report") or {}
    return (train * split_counts(report, "train")[0] + (evaluate or 0.0) * split_counts(report, "eval")[0]) * epochs


def counted(number: int, noun: str) -> str:
    """counted(1, "cell") -> "1 cell"; counted(2, "cell") -> "2 cells"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def own_run(cell: Cell, output_root: Path) -> tuple[run_index.RunInfo, int | None, float | None] | None:
    """The cell's run folder, once a process has started it: what it holds, its planned epochs (None when
    unknown) and the pace of its last epochs (`run_index.recent_pace`)."""
    folders = sorted((output_root / "runs").glob(f"*/*-{cell.identity[0]}"))
    if not folders:
        return None
    run = run_index.read_run(folders[0])
    total = run.config.get("trainer.epochs")
    return run, total if isinstance(total, int) and total >= run.epochs_done else None, run_index.recent_pace(folders[0])


def estimate(cell: Cell, output_root: Path) -> tuple[float | None, str]:
    """The time one job would take for `cell`, and how it is known: from its own run folder's measured epochs
    (a run stopped or running: the epochs left at the pace of its last epochs, `run_index.recent_pace`), else
    from the compute of the same row at another seed on the same data (the same fold first, else another fold),
    else, roughly, from the pace of the same row on the same data at another budget of the table (seconds per
    training and per eval example, scaled to this cell's epochs and whole splits: `paced_seconds`), else none.
    On the hardware that measured it."""
    own = own_run(cell, output_root)
    if own is not None:
        run, total, pace = own
        if run.epochs_done and pace and total is not None:
            left = pace * (total - run.epochs_done)
            state = "running" if run.status.startswith("running") else "resumes"
            return left, f"{state} at epoch {run.epochs_done}/{total}, about {span(left)} left"
    if cell.sibling is not None:
        seconds = compute_seconds(store.with_history(cell.sibling))
        there = cell.sibling.get("provenance", {}).get("device", "")
        elsewhere = f" on {there}" if there and not measured_here(cell.sibling) else ""
        return seconds, f"about {span(seconds)}, as {cell.sibling_is} took{elsewhere}"
    if cell.paced_by is not None and cell.epochs:
        seconds = paced_seconds(cell.paced_by, cell.epochs)
        if seconds is not None:
            there = cell.paced_by.get("provenance", {}).get("device", "")
            elsewhere = f" on {there}" if there and not measured_here(cell.paced_by) else ""
            if cell.scale is not None:
                seconds *= cell.scale
                return seconds, (f"roughly {span(seconds)}: {cell.epochs} epochs of the whole data at the pace of "
                                 f"{cell.paced_row}'s {cell.paced_budget!r} budget run on this data{elsewhere}, times "
                                 f"{cell.scale:.2f} (this row's pace over {cell.paced_row}'s in {cell.scaled_from})")
            return seconds, (f"roughly {span(seconds)}: {cell.epochs} epochs of the whole data at the pace of its "
                             f"{cell.paced_budget!r} budget's run{elsewhere}")
    return None, "no estimate: no row of this table has run on this data, or this row ran nowhere beside one that did"


def progress(cell: Cell, output_root: Path) -> str:
    """Where a running cell stands, from its run folder: its epochs done, its best eval value so far and the time
    left at the pace of its last epochs; or that no epoch has finished yet."""
    own = own_run(cell, output_root)
    if own is None:
        return "starting"
    run, total, pace = own
    if not run.epochs_done:
        return "no epoch finished yet"
    best = f", best eval {run.monitor} {run.best:.1f} at epoch {run.best_epoch}" if run.best is not None and run.monitor else ""
    left = f", about {span(pace * (total - run.epochs_done))} left" if pace and total is not None else ""
    return f"epoch {run.epochs_done}/{total if total is not None else '?'}{best}{left}"


def without_threads(device: str) -> str:
    """"CPU: AMD EPYC, AVX2 (1 threads)" -> "CPU: AMD EPYC, AVX2": the machine, whatever threads a run used."""
    return re.sub(r" \(\d+ threads\)$", "", device)


@functools.cache
def this_machine() -> str:
    import torch

    from pnlp_bench.core.provenance import device_name

    return without_threads(device_name(torch.device("cpu")))


def measured_here(record: dict) -> bool:
    """Whether `record` ran on a machine like this one (same CPU model and vector unit; any thread count)."""
    return without_threads(record.get("provenance", {}).get("device", "")) == this_machine()


def plan_lines(queue: list[Cell], output_root: Path, jobs: int) -> list[str]:
    """The dry run: one line per cell (its command and estimate), then each table's and the whole plan's time."""
    lines, per_table = [], {}
    for cell in queue:
        seconds, how = estimate(cell, output_root)
        lines.append(f"  {cell.name}: bench run {' '.join(cell.overrides)}  [{how}]")
        per_table.setdefault(cell.table, []).append(seconds)

    def summary(estimates: list[float | None]) -> tuple[float, str]:
        known = [seconds for seconds in estimates if seconds is not None]
        unknown = len(estimates) - len(known)
        if not known:
            return 0.0, "none with an estimate"
        return sum(known), (f"about {span(sum(known))} of one job for {counted(len(known), 'cell')} with an estimate"
                            + (f"; {unknown} without one" if unknown else ""))

    for table, estimates in per_table.items():
        lines.append(f"table {table}: {counted(len(estimates), 'cell')}, {summary(estimates)[1]}")
    if per_table:
        total, text = summary([seconds for estimates in per_table.values() for seconds in estimates])
        wall = (f"; at --jobs {jobs}, about {span(total / jobs)} of wall time for those (each on the hardware that "
                "measured it; a \"roughly\" one scales another budget's or another row's pace)") if total else ""
        lines.append(f"in all: {text}{wall}")
    return lines


def time_to_go(cells: list[Cell], output_root: Path, jobs: int, walls: list[float]) -> str:
    """The ETA of what is left: each cell's estimate (a running one's epochs left at its recent pace; see
    `estimate`), a cell without one at the mean wall time of the cells finished here, over `jobs` at a time."""
    if not cells:
        return "—"
    estimates = [estimate(cell, output_root)[0] for cell in cells]
    unknown = sum(seconds is None for seconds in estimates)
    seconds = sum(value for value in estimates if value is not None)
    if unknown and not walls:
        return f"{duration(seconds / jobs)} and {counted(unknown, 'cell')} without an estimate" if seconds else "—"
    return duration((seconds + unknown * (sum(walls) / len(walls) if walls else 0.0)) / jobs)


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when `bench reproduce` dies, however it dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def log_tail(path: Path, size: int = 4000) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")


def duration(seconds: float) -> str:
    """h:mm:ss"""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class Running:
    cell: Cell
    process: subprocess.Popen
    started: float
    log: IO[str]


def reproduce(names: list[str], budget: str, hours: float, jobs: int, threads: int, output_root: Path,
              results_dir: Path, extra: list[str], retry_failed: bool = False, dry_run: bool = False,
              seeds: set[int] | None = None, only: list[str] | None = None, fit: bool = False,
              progress_minutes: float = 10.0) -> int:
    start = time.monotonic()
    reported = start  # the last progress lines of the running cells (every `progress_minutes`; 0: never)
    deadline = start + hours * 3600
    queue = plan_cells(names, budget, output_root, results_dir, retry_failed, seeds=seeds, only=only)
    total = len(queue)
    print(f"bench reproduce: {counted(total, 'cell')} to run at budget {budget!r}, {jobs} at a time x "
          f"{counted(threads, 'thread')}, for at most {hours:g} h", flush=True)
    if dry_run:
        print("\n".join(plan_lines(queue, output_root, jobs)))
        return 0
    logs = output_root / "reproduce"
    logs.mkdir(parents=True, exist_ok=True)
    running: list[Running] = []
    walls: list[float] = []
    finished = failed = left_out = 0
    stopped = False
    while queue or running:
        while queue and len(running) < jobs and time.monotonic() < deadline:
            cell = queue.pop(0)
            if cell.identity in store.finished(output_root, results_dir):  # run meanwhile by another launcher
                continue
            seconds, how = estimate(cell, output_root)
            time_left = deadline - time.monotonic()
            overrun = seconds is not None and seconds > time_left
            if overrun and fit:
                left_out += 1
                print(f"left out {cell.name}: {how}, more than the {span(time_left)} left (--fit)", flush=True)
                continue
            command = [sys.executable, "-m", "pnlp_bench.cli", "run", *cell.overrides, f"output_root={output_root}",
                       f"trainer.num_threads={threads}", "quiet=true", *extra]
            log = open(logs / f"{cell.identity[0]}.log", "a", encoding="utf-8")
            log.write(f"\n$ {' '.join(command)}\n")
            log.flush()
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                                       env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            running.append(Running(cell, process, time.monotonic(), log))
            warning = f"; {span(time_left)} left: it will stop unfinished and go on next time" if overrun else ""
            print(f"started {cell.name} (pid {process.pid}, log {log.name}) · {how}{warning}", flush=True)
        if time.monotonic() >= deadline and running and not stopped:
            stopped = True
            for each in running:
                each.process.terminate()  # the run keeps its last finished epoch; the next reproduce goes on
            print(f"time budget of {hours:g} h reached: stopped {counted(len(running), 'running cell')}; "
                  f"{len(queue) + len(running)} left for the next `bench reproduce`", flush=True)
        for each in list(running):
            code = each.process.poll()
            if code is None:
                continue
            running.remove(each)
            each.log.close()
            wall = time.monotonic() - each.started
            record = store.finished(output_root).get(each.cell.identity)
            if record is not None:
                finished += 1
                walls.append(wall)
                outcome = f"done in {duration(wall)}"
            elif stopped:
                outcome = "stopped at the time budget"
            elif "is in use by" in log_tail(Path(each.log.name)):
                outcome = "left to the process already training it (its run folder is in use)"
            else:
                failed += 1
                outcome = f"failed (exit {code}; {each.log.name})"
            for name in (each.cell.table, *each.cell.also_in):
                table_spec = tables.load_spec(name)
                tables.commit_records(table_spec, budget, output_root, results_dir)
                if record is not None:
                    tables.write_results(table_spec, budget, tables.aggregate(table_spec, budget, output_root, results_dir),
                                         results_dir, output_root)
            done, needed = tables.coverage(tables.load_spec(each.cell.table), budget, output_root, results_dir)
            eta = time_to_go([item.cell for item in running] + queue, output_root, jobs, walls)
            print(f"[{finished + failed}/{total}] {each.cell.name}: {outcome} · table {each.cell.table} at {budget}: "
                  f"{done}/{needed} runs · elapsed {duration(time.monotonic() - start)} · ETA {eta}", flush=True)
        if running and progress_minutes > 0 and time.monotonic() - reported >= progress_minutes * 60:
            reported = time.monotonic()
            for each in running:
                print(f"... {each.cell.name}: {progress(each.cell, output_root)} · running {duration(reported - each.started)}",
                      flush=True)
        if running or queue:
            if not running and time.monotonic() >= deadline:
                break
            time.sleep(2)
    print(f"bench reproduce: {finished} finished, {failed} failed, {len(queue)} not started"
          + (f", {left_out} left out by --fit" if left_out else ""), flush=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="paper", help="the budget profile of the table files (default: paper)")
    parser.add_argument("--hours", type=float, default=2.5, help="stop starting cells, and stop running ones, after this")
    parser.add_argument("--tables", default=",".join(PRIORITY), help="which tables, in this order (default: %(default)s)")
    cores = os.cpu_count() or 1
    parser.add_argument("--jobs", type=int, default=max(1, cores // 2) if cores > 2 else cores,
                        help="cells at once (default: the cores, one thread each, on two cores)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per cell (default: cores / jobs)")
    parser.add_argument("--seeds", default=None,
                        help="only these seeds, e.g. 0 or 0,1 (default: every seed the table files plan)")
    parser.add_argument("--only", action="append", default=[], metavar="OVERRIDE",
                        help="only the cells whose command holds this override, e.g. data=hyperpartisan (repeatable: all of them)")
    parser.add_argument("--fit", action="store_true",
                        help="start only cells whose estimate (see --dry-run) fits in the time left; cells without one still start")
    parser.add_argument("--progress-minutes", type=float, default=10.0,
                        help="every this many minutes, one line per running cell: epochs done, best eval, time left "
                             "(default: %(default)g; 0: only the line per finished cell)")
    parser.add_argument("--retry-failed", action="store_true", help="run cells that failed with this code again")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; run nothing")
    parser.add_argument("--check-estimates", action="store_true",
                        help="how rough the estimate of a row never run on its data is: each row that ran at --budget, "
                             "estimated as if it had not, against its measured compute; runs nothing")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--output-root", type=Path, default=Path(os.environ.get("BENCH_OUTPUT_ROOT", "outputs")))
    args, extra = parser.parse_known_args(argv)
    flags = [arg for arg in extra if arg.startswith("-")]
    if flags:  # the rest goes to every cell's bench run as overrides; an unknown flag must not start runs unnoticed
        parser.error(f"unrecognized option {flags[0]!r} (the options are above; overrides are key=value)")
    if args.jobs < 1 or args.hours <= 0 or args.progress_minutes < 0:
        parser.error("--jobs must be >= 1, --hours > 0 and --progress-minutes >= 0")
    try:
        seeds = None if args.seeds is None else {int(seed) for seed in args.seeds.split(",") if seed.strip()}
    except ValueError:
        parser.error(f"--seeds takes seeds separated by commas, e.g. 0 or 0,1; got {args.seeds!r}")
    threads = args.threads or max(1, cores // args.jobs)
    names = [name.strip() for name in args.tables.split(",") if name.strip()]
    for name in names:
        tables.load_spec(name)  # an unknown table fails here, with the list of tables
    if args.check_estimates:
        lines = estimate_check(names, args.budget, args.output_root.resolve(), args.results_dir)
        print("\n".join(lines) if lines else f"no row of table(s) {', '.join(names)} ran at {args.budget!r} beside "
              "another row on its data, with both rows run together elsewhere: nothing to check")
        return 0
    return reproduce(names, args.budget, args.hours, args.jobs, threads, args.output_root.resolve(), args.results_dir,
                     [arg for arg in extra if arg != "quiet=true"], args.retry_failed, args.dry_run, seeds, args.only,
                     args.fit, args.progress_minutes)
