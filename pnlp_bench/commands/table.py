"""`bench table N` and `bench tables`: regenerate a paper table from the declarative file in `experiments/`.

A table file names its rows (Hydra overrides each), columns (which metric of which split and language),
seeds, budgets and the paper's number for every cell it gives, with its source. `bench table N`:
1. composes each (row, seed) config in-process and looks its identity (config hash + code version) up in
   the results store: finished cells are skipped, so a killed sweep re-runs only what is missing;
2. launches every row's missing seeds as one Hydra multirun (`bench run --multirun …`), so whatever
   launcher the user names (`hydra/launcher=joblib`, `submitit_slurm`, …) runs them;
3. renders `results/tableN.md`, `.tex`, `.csv` and `.json` from the store's records only (commands/table_files.py): paper value, ours as
   mean ± std over seeds, the difference, parameters, budget, hardware and commit.

Tables of BiGS (`experiments/bigs_table1.yaml`, `bench table bigs_table1`) add a `pretrain:` stage: each row is
first pretrained (`task=mlm`, one run per row), then its fine-tuning cells start from it through
`init=run:<the pretraining's config hash>`, so the pretraining is part of every fine-tuning cell's identity (a
changed pretraining budget re-runs the cells, in new folders); the table gains the pretraining's dev metric.
A budget with `pretrain_step: N` fine-tunes from the pretraining's snapshot at step N instead
(`init=run:<hash>@N`, `trainer.snapshot_steps`), and its pretraining column is that snapshot's dev score:
several budgets of one pretraining run, as the paper's 11B- and 29B-token models are steps of its 97B run.
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pnlp_bench.commands import table_claims, table_files
from pnlp_bench.core import store
from pnlp_bench.core.atomic import write_atomic
from pnlp_bench.core.compose import compose, compose_fingerprint, config_identity
from pnlp_bench.core.record import SELECTION_SPLIT, RunRecord
from pnlp_bench.core.paths import cache_dir, data_dir_candidates
from pnlp_bench.core.registry import ConfigError


@dataclass
class Column:
    name: str
    metric: str
    split: str = "test"
    language: str = "avg"
    # Columns may come from different runs of the same row (Table 7: IMDB and Hyperpartisan).
    overrides: list[str] = field(default_factory=list)
    # Cross-validation: one run per fold, the column's number the mean ± std over folds (and seeds), e.g.
    # {key: data.options.fold, values: [0, ..., 9]}; a budget's `folds: [0]` runs only those folds.
    folds: dict[str, Any] | None = None
    # A column of no runs of its own: per seed, the mean of these columns, each from its own runs (Table 5 trains
    # one model per language; its `avg` is the mean of the six language columns, shown only where all have run).
    mean_of: list[str] = field(default_factory=list)


@dataclass
class Row:
    name: str
    overrides: list[str]
    paper: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper_params: str = ""


PLOT_KINDS = ("bars", "grouped_bars", "params", "none")


@dataclass
class Plot:
    """How `bench report` draws the table's scores, from the table file's `plot:` (a kind, or a mapping).

    kind: `bars` (the default: rows are categories, e.g. projections or backbones: one bar per row with the
    paper's value marked and the std over seeds as an error bar); `grouped_bars` (rows are a grid: each row is
    named "<group>, <series>" with `series` listing the bars of a group, e.g. Table 4's F x mixer size);
    `params` (rows are size presets: the score against parameters on a log axis, the paper's figure); `none`.
    columns: the columns drawn, one panel each; empty: the first column (the table's headline metric).
    """

    kind: str = "bars"
    columns: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)


@dataclass
class TableSpec:
    number: str
    title: str
    source: str
    rows: list[Row]
    columns: list[Column]
    seeds: list[int]
    base: list[str]
    budgets: dict[str, dict[str, Any]]
    precisions: list[str]
    requires: list[str]
    notes: list[str]
    path: Path
    # BiGS tables: {overrides: [...], metric: perplexity, column: "<name>"}
    pretrain: dict[str, Any] | None = None
    plot: Plot = field(default_factory=Plot)
    # BiGS tables: an average column, the paper's claims and the score-against-pretraining sweep (table_claims.py)
    average: dict[str, Any] | list[dict[str, Any]] | None = None
    claims: dict[str, Any] | None = None
    scaling: dict[str, Any] | None = None

    def plot_columns(self) -> list[str]:
        return self.plot.columns or [self.columns[0].name]

    @property
    def stem(self) -> str:
        """results/<stem>.md: `table6` for the pNLP-Mixer tables, the file's own name (`bigs_table1`) otherwise."""
        return f"table{self.number}" if self.number.isdigit() else self.path.stem

    @property
    def heading(self) -> str:
        return f"Table {self.number}" if self.number.isdigit() else self.path.stem

    def pretrain_overrides(self, row: Row, budget: str) -> list[str]:
        """The pretraining run of `row`: the table's pretrain overrides, the budget's, then the row's."""
        assert self.pretrain is not None
        extra = self.budgets[budget].get("pretrain_overrides", [])
        return [*self.pretrain.get("overrides", []), *extra, *row.overrides, "seed=0"]

    def column_groups(self, column: Column, budget: str) -> list[tuple[str, ...]]:
        """The override sets of a column's runs: one, or one per fold the budget runs. A budget's
        `column_overrides: {<column name>: [...]}` adds to that column's runs (a subset of one task's data)."""
        if column.mean_of:
            return []
        own = [*column.overrides, *self.budgets[budget].get("column_overrides", {}).get(column.name, [])]
        if not column.folds:
            return [tuple(own)]
        values = self.budgets[budget].get("folds", column.folds["values"])
        return [(*own, f"{column.folds['key']}={value}") for value in values]

    def any_fold(self, group: tuple[str, ...]) -> tuple[str, ...]:
        """`group` with its fold's value as `*` (`data.options.fold=*`): the same for every fold of one column's
        data, and for nothing else."""
        keys = {column.folds["key"] for column in self.columns if column.folds}
        return tuple(f"{override.split('=', 1)[0]}=*" if override.split("=", 1)[0] in keys else override
                     for override in group)

    def run_groups(self, budget: str) -> list[tuple[str, ...]]:
        """The distinct override sets of the columns' runs: each is one run per row and seed."""
        groups: list[tuple[str, ...]] = []
        for column in self.columns:
            for group in self.column_groups(column, budget):
                if group not in groups:
                    groups.append(group)
        return groups

    def rows_for(self, budget: str) -> list[Row]:
        if budget not in self.budgets:
            raise ConfigError(f"{self.path}: no budget {budget!r}; valid: {', '.join(self.budgets)}")
        chosen = self.budgets[budget].get("rows")
        return [row for row in self.rows if chosen is None or row.name in chosen]

    def cells(self, budget: str) -> list[tuple[Row, tuple[str, ...], int, list[str]]]:
        return [
            (row, group, seed, [*self.row_overrides(row, budget, group), f"seed={seed}"])
            for row in self.rows_for(budget)
            for group in self.run_groups(budget)
            for seed in self.seeds_for(budget)
        ]

    def row_overrides(self, row: Row, budget: str, group: tuple[str, ...] = ()) -> list[str]:
        extra = ["quantize.int8=true"] if "int8" in self.precisions else []
        if self.pretrain is not None:  # the row's own pretraining, by identity (see the module doc)
            step = self.budgets[budget].get("pretrain_step")
            extra.append(f"init=run:{pretraining_identity(self, row, budget)[0]}" + (f"@{step}" if step else ""))
        return [*self.base, *group, *self.budgets[budget]["overrides"], *extra, *row.overrides]

    def seeds_for(self, budget: str) -> list[int]:
        return list(self.budgets[budget].get("seeds", self.seeds))


def experiments_dir() -> Path:
    """The table files: ./experiments (a checkout, or a user's own tables), else those shipped in the package
    (pnlp_bench/experiments, a link to the checkout's experiments/ that the wheel holds as files)."""
    for candidate in (Path.cwd() / "experiments", Path(__file__).resolve().parents[1] / "experiments"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("no experiments/ folder here or beside the package; run bench table from the project root")


def paper_value(raw: Any, default_source: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return {"value": raw.get("value"), "source": raw.get("source", default_source), "note": raw.get("note", "")}
    return {"value": raw, "source": default_source, "note": ""}


def read_table_file(path: Path) -> Any:
    """A table file's YAML, read with libyaml's safe loader where PyYAML has it: `bench tables` reads every
    file twice, and the pure-Python parser took about 1.4 s of its 3.6 s on the 2-core CPU."""
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def is_table_file(path: Path) -> bool:
    """Table files have a `table:` key; other experiment files (bigs_length.yaml, run by `bench speed length`) do not."""
    raw = read_table_file(path)
    return isinstance(raw, dict) and "table" in raw


def spec_files() -> list[Path]:
    """Every table file: the pNLP-Mixer tables in order, the fidelity study, then the BiGS ones."""
    folder = experiments_dir()
    numbered = sorted(folder.glob("table*.yaml"), key=lambda p: (len(p.stem), p.stem))
    studies = sorted(folder.glob("fidelity*.yaml")) + sorted(folder.glob("precision*.yaml"))
    return [path for path in numbered + studies + sorted(folder.glob("bigs_*.yaml")) if is_table_file(path)]


def table_name(path: Path) -> str:
    """What `bench table` takes for a file: `6` for table6.yaml, `bigs_table1` for bigs_table1.yaml."""
    return path.stem.removeprefix("table") if path.stem.startswith("table") else path.stem


def load_spec(number: str) -> TableSpec:
    path = experiments_dir() / (f"table{number}.yaml" if number.isdigit() else f"{number}.yaml")
    if not path.exists() or not is_table_file(path):
        available = [table_name(p) for p in spec_files()]
        raise ConfigError(f"no table {number!r} in {path.parent}; available: {', '.join(available)}")
    raw = read_table_file(path)
    if "init" in (raw.get("pretrain") or {}):  # a key of older table files, which the fine-tuning no longer reads
        raise ConfigError(f"{path}: pretrain.init is not read any more: each row fine-tunes from its own pretraining by identity")
    try:
        columns = [Column(**{**column, "overrides": list(column.get("overrides", [])),
                             "mean_of": list(column.get("mean_of", []))}) for column in raw["columns"]]
        check_means(path, columns)
        rows = []
        for row in raw["rows"]:
            source = row.get("source", raw.get("paper_source", ""))
            paper = {name: paper_value(value, source) for name, value in (row.get("paper") or {}).items()}
            rows.append(Row(row["name"], list(row.get("overrides", [])), paper, str(row.get("paper_params", ""))))
        spec = TableSpec(
            number=str(raw["table"]),
            title=raw["title"],
            source=raw.get("paper_source", ""),
            rows=rows,
            columns=columns,
            seeds=list(raw.get("seeds", [0, 1, 2])),
            base=list(raw.get("base", [])),
            budgets={
                name: {"overrides": list((values or {}).get("overrides", [])), **(values or {})}
                for name, values in raw["budgets"].items()
            },
            precisions=list(raw.get("precisions", ["fp32"])),
            requires=list(raw.get("requires", [])),
            notes=list(raw.get("notes", [])),
            path=path,
            pretrain=raw.get("pretrain"),
            plot=load_plot(path, raw.get("plot"), columns, rows),
            average=raw.get("average"),
            claims=raw.get("claims"),
            scaling=raw.get("scaling"),
        )
        table_claims.check_spec(spec)
        return spec
    except (KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{path}: malformed table file ({type(error).__name__}: {error})") from None


def check_means(path: Path, columns: list[Column]) -> None:
    """A `mean_of` column names two or more of the table's other columns, none of them a mean itself."""
    runs = [column.name for column in columns if not column.mean_of]
    for column in columns:
        if not column.mean_of:
            continue
        strays = [name for name in column.mean_of if name not in runs]
        if strays or len(column.mean_of) < 2 or column.overrides or column.folds:
            what = (f"{strays[0]!r} is not a column with runs of its own; valid: {', '.join(runs)}" if strays
                    else "it needs two or more columns and no overrides or folds of its own")
            raise ConfigError(f"{path}: column {column.name!r}: mean_of: {what}")


def load_plot(path: Path, raw: Any, columns: list[Column], rows: list[Row]) -> Plot:
    """The table file's `plot:`: a kind (`plot: params`) or a mapping of Plot's fields; checked against the table."""
    plot = Plot(kind=raw) if isinstance(raw, str) else Plot(**(raw or {}))
    if plot.kind not in PLOT_KINDS:
        raise ConfigError(f"{path}: plot kind {plot.kind!r} is not one of {', '.join(PLOT_KINDS)}")
    names = [column.name for column in columns]
    unknown = [name for name in plot.columns if name not in names]
    if unknown:
        raise ConfigError(f"{path}: plot column {unknown[0]!r} is not a column of the table; valid: {', '.join(names)}")
    if plot.kind == "grouped_bars":
        if not plot.series:
            raise ConfigError(f"{path}: plot kind grouped_bars needs `series`, the bars of each group")
        strays = [row.name for row in rows if not any(row.name.endswith(f", {name}") for name in plot.series)]
        if strays:
            raise ConfigError(f"{path}: row {strays[0]!r} is not named \"<group>, <series>\" for a series of "
                              f"{plot.series}")
    return plot


def cell_identity(overrides: list[str]) -> tuple[str, str]:
    """The identity `bench run <overrides>` records under (the run folder and the store use the same)."""
    return config_identity(compose(overrides)), store.code_version()


def missing_data(spec: TableSpec) -> list[str]:
    return [need for need in spec.requires if not any((base / need).exists() for base in data_dir_candidates())]


def plan(spec: TableSpec, budget: str, output_root: Path, results_dir: Path | None = None) -> tuple[list, dict]:
    """Every (row, seed, overrides, identity) of the table, and the finished records by identity (the local
    store's and, with `results_dir`, the committed ones: core/store.py)."""
    from hydra.errors import HydraException

    done = store.finished(output_root, results_dir)
    cells = []
    for row, group, seed, overrides in spec.cells(budget):
        try:
            identity = cached_identity(tuple(overrides))  # a table is planned several times per command
        except HydraException as error:
            first_line = str(error).strip().splitlines()[0]
            raise ConfigError(f"{spec.path}: row {row.name!r}, budget {budget!r}: {first_line}") from None
        cells.append((row, group, seed, overrides, identity))
    return cells, done


def cached_identity(overrides: tuple[str, ...]) -> tuple[str, str]:
    """`cell_identity`, composed once and kept (`composed_facts`): a table is planned again for its coverage, its
    records and its rendering, and every fine-tuning cell of a row asks for its pretraining's."""
    return composed_facts(overrides)[0]


def planned_epochs(overrides: tuple[str, ...]) -> int | None:
    """The epochs (`trainer.epochs`) `bench run <overrides>` trains for; None where the config has none."""
    return composed_facts(overrides)[1]


@functools.cache
def composed_facts(overrides: tuple[str, ...]) -> tuple[tuple[str, str], int | None]:
    """What planning reads of a cell's composed config: its identity and epochs. Composing takes a Hydra
    compose per cell (a quarter of a second or more; `bench tables` plans hundreds), so the facts are kept in
    the cache folder under `compose_fingerprint()`, which changes with any config file or the code that
    composes and hashes: a kept fact is one the same compose gave."""
    path, facts = identity_cache()
    key = json.dumps(list(overrides))
    kept = facts.get(key)
    if (isinstance(kept, list) and len(kept) == 3 and all(isinstance(part, str) for part in kept[:2])
            and (kept[2] is None or isinstance(kept[2], int))):
        return (kept[0], kept[1]), kept[2]
    cfg = compose(list(overrides))
    epochs = cfg.get("trainer", {}).get("epochs")
    identity, epochs = (config_identity(cfg), store.code_version()), epochs if isinstance(epochs, int) else None
    facts[key] = [*identity, epochs]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda handle: handle.write(json.dumps(facts, sort_keys=True).encode()))
    except OSError:  # a cache: a read-only or full disk only costs the next process the compose
        pass
    return identity, epochs


def identity_cache() -> tuple[Path, dict[str, Any]]:
    """The kept facts of `composed_facts` for this fingerprint, in this cache folder (empty where the file is
    missing or damaged: it is rebuilt)."""
    return kept_facts(cache_dir() / "identities" / f"{compose_fingerprint()}.json")


@functools.cache
def kept_facts(path: Path) -> tuple[Path, dict[str, Any]]:
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts = {}
    return path, facts if isinstance(facts, dict) else {}


def pretraining_identity(spec: TableSpec, row: Row, budget: str) -> tuple[str, str]:
    from hydra.errors import HydraException

    try:
        return cached_identity(tuple(spec.pretrain_overrides(row, budget)))
    except HydraException as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"{spec.path}: pretraining of row {row.name!r}, budget {budget!r}: {first_line}") from None


def pretrainings_to_run(spec: TableSpec, budget: str, output_root: Path, cells: list, done: dict) -> list[Row]:
    """The rows whose pretraining `bench table` must run (see `pretrain_rows`)."""
    local = store.finished(output_root)
    rows = []
    for row in spec.rows_for(budget):
        identity = pretraining_identity(spec, row, budget)
        cells_to_run = any(r is row and cell not in done for r, *_, cell in cells)
        if identity not in local and (identity not in done or cells_to_run):
            rows.append(row)
    return rows


def pretrain_rows(spec: TableSpec, budget: str, output_root: Path, cells: list, done: dict, extra: list[str]) -> set[str]:
    """Runs each row's missing pretraining (one process each); returns the rows whose pretraining failed.

    A pretraining is needed when it has no record, or when a fine-tuning cell of its row is still to run and
    its weights are not under `output_root`: the committed records (results/records.jsonl) do not hold
    weights, so on a fresh clone such a pretraining runs again (the record of the new run wins)."""
    failed = set()
    for row in pretrainings_to_run(spec, budget, output_root, cells, done):
        overrides = spec.pretrain_overrides(row, budget)
        print(f"table {spec.number} · {row.name}: pretraining", flush=True)
        command = [sys.executable, "-m", "pnlp_bench.cli", "run", *overrides, f"output_root={output_root}", *extra]
        if subprocess.run(command).returncode != 0:
            failed.add(row.name)
    return failed


def dry_run_lines(spec: TableSpec, budget: str, output_root: Path, results_dir: Path | None = None) -> list[str]:
    """What `bench table` would launch at `budget`, in its order, without running anything: the pretrainings
    `pretrain_rows` would run, then each cell without a finished run (one line each, as `bench run` takes it)."""
    cells, done = plan(spec, budget, output_root, results_dir)
    lines = []
    if spec.pretrain is not None:
        for row in pretrainings_to_run(spec, budget, output_root, cells, done):
            lines.append(f"table {spec.number} · {row.name} · pretraining: bench run {' '.join(spec.pretrain_overrides(row, budget))}")
    seen = set()
    for row, _, seed, overrides, identity in cells:
        if identity in done or identity in seen:
            continue
        seen.add(identity)
        lines.append(f"table {spec.number} · {row.name} · seed {seed}: bench run {' '.join(overrides)}")
    return lines


def table_identities(spec: TableSpec, budget: str, cells: list) -> list[tuple[str, str]]:
    """The identities of every run a table needs at a budget: its cells and, for BiGS tables, the pretrainings."""
    identities = [identity for *_, identity in cells]
    if spec.pretrain is not None:
        identities += [pretraining_identity(spec, row, budget) for row in spec.rows_for(budget)]
    return identities


def commit_records(spec: TableSpec, budget: str, output_root: Path, results_dir: Path) -> int:
    """Copy the local store's records of the table's runs (finished, and failed where none finished) into the
    committed records (results/records.jsonl); returns how many were added."""
    cells, _ = plan(spec, budget, output_root)
    wanted = set(table_identities(spec, budget, cells))
    finished, failed = store.finished(output_root), store.failures(output_root)
    new = [finished[key] for key in wanted if key in finished]
    new += [failed[key] for key in wanted if key in failed and key not in finished]
    return store.commit(results_dir, sorted(new, key=lambda record: (record["config_hash"], record.get("seed", 0))))


def launch(spec: TableSpec, budget: str, output_root: Path, launcher_args: list[str], results_dir: Path | None = None) -> int:
    cells, done = plan(spec, budget, output_root, results_dir)
    quiet = [arg for arg in launcher_args if arg == "quiet=true"]
    failed_pretraining = pretrain_rows(spec, budget, output_root, cells, done, quiet) if spec.pretrain is not None else set()
    failures = len(failed_pretraining)
    for row in spec.rows_for(budget):
        if row.name in failed_pretraining:
            print(f"table {spec.number} · {row.name}: pretraining failed, its fine-tuning cells are left out")
            continue
        for group in spec.run_groups(budget):
            # Read the store again before each launch: runs finished meanwhile by another `bench table` or a
            # hand-started `bench run` of the same config (this table is long) are not run twice.
            done = store.finished(output_root, results_dir)
            missing = [seed for r, g, seed, _, identity in cells if r is row and g == group and identity not in done]
            if not missing:
                continue
            overrides = spec.row_overrides(row, budget, group)
            command = [
                sys.executable, "-m", "pnlp_bench.cli", "run", "--multirun", *overrides,
                f"seed={','.join(map(str, missing))}", f"output_root={output_root}", *launcher_args,
            ]
            print(f"table {spec.number} · {row.name} {' '.join(group)}: seeds {missing}", flush=True)
            failures += subprocess.run(command).returncode != 0
            if results_dir is not None:
                commit_records(spec, budget, output_root, results_dir)
    return failures


PRETRAINING = "<pretraining>"
COST = "cost"  # a column split: the training's cost, not a metric of a split


def display_columns(spec: TableSpec) -> list[Column]:
    """The table's columns, plus its pretraining's dev metric for BiGS tables."""
    if spec.pretrain is None:
        return spec.columns
    metric = spec.pretrain.get("metric", "perplexity")
    name = spec.pretrain.get("column", f"MLM dev {metric}")
    return [*spec.columns, Column(name=name, metric=metric, split=SELECTION_SPLIT, language="", overrides=[PRETRAINING])]


def summarise(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    # one run has no spread to show: its std is null (the table prints "(n=1)"), never a made-up 0.0
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def pretraining_metric(record: dict[str, Any], column: Column, step: int | None) -> float | None:
    """The pretraining's dev metric: at its end, or at the snapshot of `step` (a budget's `pretrain_step`)."""
    if step is None:
        return metric_of(record, column, "fp32")
    return next((snap.get(column.metric) for snap in record.get("snapshots", []) if snap["step"] == step), None)


def metric_of(record: dict[str, Any], column: Column, precision: str) -> float | None:
    """The column's number in a record of either family and any age (core/record.py: one layout). A column of
    `split: cost` reads the training's cost instead (BiGS fine-tunings: seconds_per_step, peak_memory_mb, ...)."""
    if column.split == COST:
        return (record.get("cost") or {}).get(column.metric)
    return RunRecord.from_json(record).metric(column.split, column.language, column.metric, int8=precision != "fp32")


def aggregate(spec: TableSpec, budget: str, output_root: Path, results_dir: Path | None = None) -> list[dict[str, Any]]:
    cells, done = plan(spec, budget, output_root, results_dir)
    failures = store.failures(output_root, results_dir)
    chosen = {row.name for row in spec.rows_for(budget)}
    rows = []
    for row in spec.rows:
        for precision in spec.precisions:
            for column in display_columns(spec):
                group = tuple(column.overrides)
                groups = spec.column_groups(column, budget) if group != (PRETRAINING,) else [group]
                if column.mean_of:
                    values, records = mean_of_columns(spec, row, column, precision, budget, cells, done)
                    rows.append(cell_entry(spec, row, column, precision, budget, values, records, ""))
                    continue
                if group == (PRETRAINING,):
                    identity = pretraining_identity(spec, row, budget) if row.name in chosen else None
                    records = [done[identity]] if identity in done and precision == "fp32" else []
                    finished = []
                else:
                    finished = [(g, i) for r, g, _, _, i in cells if r is row and g in groups and i in done]
                    records = [done[i] for _, i in finished]
                if group == (PRETRAINING,):
                    step = spec.budgets[budget].get("pretrain_step")
                    found = (pretraining_metric(record, column, step) for record in records)
                else:
                    found = (metric_of(record, column, precision) for record in records)
                values = [v for v in found if v is not None]
                # cross-validation: how many of the budget's folds have a finished run (a partial mean says so)
                folds_run = len({g for g, _ in finished}) if column.folds and group != (PRETRAINING,) else None
                why_missing = ""
                if not records and group != (PRETRAINING,):
                    failed = [failures[i] for r, g, _, _, i in cells if r is row and g in groups and i in failures]
                    why_missing = failed[-1]["error"] if failed else ""
                folds = {"folds_run": folds_run, "folds_planned": len(groups)} if folds_run is not None else {}
                rows.append(cell_entry(spec, row, column, precision, budget, values, records, why_missing, folds))
    return rows


TRAINED_IN = {"bf16": "bf16 autocast", "fp16": "fp16 autocast"}


def mean_of_columns(spec: TableSpec, row: Row, column: Column, precision: str, budget: str, cells: list,
                    done: dict) -> tuple[list[float], list[dict[str, Any]]]:
    """A `mean_of` column's values, one per seed for which every named column has a finished run (a fold column
    counts with its mean over the folds run), and the records behind them."""
    parts = [part for part in spec.columns if part.name in column.mean_of]
    by_part: list[dict[int, list[tuple[float, dict[str, Any]]]]] = []
    for part in parts:
        groups = spec.column_groups(part, budget)
        found: dict[int, list[tuple[float, dict[str, Any]]]] = {}
        for r, g, seed, _, identity in cells:
            value = metric_of(done[identity], part, precision) if r is row and g in groups and identity in done else None
            if value is not None:
                found.setdefault(seed, []).append((value, done[identity]))
        by_part.append(found)
    seeds = sorted(set.intersection(*(set(found) for found in by_part)))
    values = [statistics.fmean(statistics.fmean(value for value, _ in found[seed]) for found in by_part) for seed in seeds]
    records = list({id(record): record for found in by_part for seed in seeds for _, record in found[seed]}.values())
    return values, records


def cell_entry(spec: TableSpec, row: Row, column: Column, precision: str, budget: str, values: list[float],
               records: list[dict[str, Any]], why_missing: str, folds: dict[str, int] | None = None) -> dict[str, Any]:
    """One cell of the table files: ours (mean and std of `values`), the paper's number, and the provenance of the
    records behind it."""
    mean, std = summarise(values)
    paper = row.paper.get(column.name, {"value": None, "source": "", "note": ""})
    return {
        "table": spec.number,
        "row": row.name,
        "precision": precision,
        "column": column.name,
        "metric": f"{column.split}/{column.language}/{column.metric}",
        "paper": paper["value"],
        "paper_source": paper["source"],
        "paper_note": paper["note"],
        "ours_mean": mean,
        "ours_std": std,
        "not_run": why_missing,
        "seeds": sorted({record["seed"] for record in records}),
        "seeds_planned": spec.seeds_for(budget),
        "difference": None if mean is None or paper["value"] is None else mean - paper["value"],
        "params": records[0]["parameters"]["total"] if records else None,
        "paper_params": row.paper_params,
        "budget": budget,
        "epochs": sorted({record["epochs"] for record in records}),
        "budget_label": sorted({record["budget"] for record in records}),
        "hardware": sorted({record["provenance"]["device"] for record in records}),
        # what the runs trained in (precision=auto: bf16 autocast where the CPU has native bf16)
        "trained_in": sorted({TRAINED_IN.get(record["precision"], record["precision"])
                              for record in records if record.get("precision")}),
        "commits": sorted({record["provenance"]["commit"][:10] for record in records}),
        "dirty": any(record["provenance"].get("dirty") for record in records),
        "dates": sorted({record["provenance"]["date"][:10] for record in records}),
        "run_dirs": sorted(record.get("run_dir", "") for record in records),
        "code_version": store.code_version(),
        # cross-validation columns only, so the files of other tables keep their columns
        **(folds or {}),
    }


def write_results(spec: TableSpec, budget: str, cells: list[dict[str, Any]], results_dir: Path,
                  output_root: Path | None = None, records_dir: Path | None = None) -> list[Path]:
    """results/<stem>.md, .tex, .csv and .json (commands/table_files.py), with the claims and the score against
    pretraining of a table file that asks for them (table_claims.py): from the committed records and, given
    `output_root`, its local store too (as `aggregate` read the cells); the committed records are those of
    `records_dir`, by default the folder written to."""
    plot = {"kind": spec.plot.kind, "columns": spec.plot_columns(), "series": spec.plot.series}
    sections, extra = table_claims.analysis(spec, budget, output_root, records_dir or results_dir)
    return table_files.write_files(spec, display_columns(spec), budget, cells, results_dir, plot, sections, extra)


def coverage(spec: TableSpec, budget: str, output_root: Path, results_dir: Path | None = None) -> tuple[int, int]:
    """(runs finished, runs the table needs) at a budget."""
    cells, done = plan(spec, budget, output_root, results_dir)
    identities = table_identities(spec, budget, cells)
    return sum(identity in done for identity in identities), len(identities)


def best_budget(spec: TableSpec, output_root: Path, results_dir: Path | None = None) -> str | None:
    """The budget a table shows when none is named: the paper's protocol if any of its runs finished, else
    the first budget of the file with a finished run; None when none has."""
    for budget in sorted(spec.budgets, key=lambda name: name != "paper"):
        if coverage(spec, budget, output_root, results_dir)[0]:
            return budget
    return None


def status(spec: TableSpec, budget: str, output_root: Path, results_dir: Path | None = None) -> str:
    absent = missing_data(spec)
    finished, total = coverage(spec, budget, output_root, results_dir)
    if absent and not finished:
        return f"missing data ({', '.join(absent)})"
    if finished == total:
        return "done"
    return f"partial ({finished}/{total} runs)" if finished else f"missing ({total} runs to do)"
