"""`bench report`: plots beside the tables and `results/README.md` linking every table, its LaTeX and its plots.

The plots (commands/plots.py) are drawn as each table file's `plot:` says:
- `bars_<stem>.png`: one bar per row, the paper's value marked, for tables whose rows are categories
  (projections, backbones, variants, the studies' experiments; Table 4 grouped by projection size);
- `params_vs_score_<stem>.png`: ours and the paper's score against parameters, for tables whose rows are size
  presets (Tables 5 and 6: the paper's accuracy-against-parameters figure);
- `curves_<stem>.png`: the eval metric per epoch of every run behind a table, named by its row (the history
  each committed record carries, or the run folder's metrics.json for a record of the local store only);
- BiGS tables with a `scaling:` key: `mlm_curves_<stem>.png` and `score_vs_pretraining_<stem>.png` (commands/bigs_plots.py).
`results/README.md` opens with the coverage of every table: cells at the paper's protocol and run at all, out of
all cells; seed runs out of those planned; paper numbers compared and the mean absolute difference to them.
The reports of the other commands (`bench speed`, `bench probe`, `bench bow`, ...) close it, one line each, titled
by their first heading.
Everything is read from `results/*.json`, the committed records (`results/records.jsonl`) and the local store;
nothing is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pnlp_bench.commands import bigs_plots, plots
from pnlp_bench.core import store
from pnlp_bench.core.atomic import write_text_atomic
from pnlp_bench.core.record import compute_seconds


def at_paper_protocol(cell: dict[str, Any]) -> bool:
    return any(label.endswith("paper protocol") and "not the" not in label for label in cell.get("budget_label", []))


def coverage_row(table: dict[str, Any], walls: dict[str, float]) -> str:
    """One line of the coverage: the table's cells (every row, column and precision) at the paper's protocol and
    run at any budget, the seed runs against those planned, the fp32 cells with a paper number at the protocol,
    the mean |ours - paper| over those, and the compute of the runs behind the table (their wall-clock hours,
    from `walls`: run folder -> seconds, every process of a resumed run counted)."""
    cells = table["cells"]
    ran = [cell for cell in cells if cell["ours_mean"] is not None]
    protocol = [cell for cell in ran if at_paper_protocol(cell)]
    seeds = sum(len(cell.get("seeds", [])) for cell in cells)
    planned = sum(len(cell.get("seeds_planned", [])) for cell in cells)
    known = [cell for cell in cells if cell["precision"] == "fp32" and cell["paper"] is not None]
    compared = [cell for cell in known if cell["ours_mean"] is not None and at_paper_protocol(cell)]
    differences = [abs(cell["difference"]) for cell in compared if cell["difference"] is not None]
    mean = f"{sum(differences) / len(differences):.1f}" if differences else "—"
    runs = {run_dir for cell in cells for run_dir in cell.get("run_dirs", [])}
    hours = [walls[run_dir] for run_dir in runs if run_dir in walls]
    compute = f"{len(runs)} runs, {sum(hours) / 3600:.1f} h" if hours else f"{len(runs)} runs, no record here"
    return (f"| [{table['table']}]({stem_of(table)}.md) | {table['budget']} | {len(protocol)} / {len(cells)} | "
            f"{len(ran)} / {len(cells)} | {seeds} / {planned} | {len(compared)} / {len(known)} | {mean} | {compute} |")


def stem_of(table: dict[str, Any]) -> str:
    number = str(table["table"])
    return f"table{number}" if number.isdigit() else number


PLOT_NAMES = {"bars": ("bars", "scores by row"), "grouped_bars": ("bars", "scores by row"),
              "params": ("params_vs_score", "score vs parameters")}


def table_plots(path: Path, table: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Draws a table's plots beside it; returns their links. A plot of a kind the table no longer has is removed."""
    links = []
    kind = plots.plot_spec(table)["kind"]
    for prefix, text in dict.fromkeys(PLOT_NAMES.values()):
        plot = path.parent / f"{prefix}_{path.stem}.png"
        if (prefix, text) == PLOT_NAMES.get(kind) and plots.score_plot(table, plot):
            links.append(f"[{text}]({plot.name})")
        elif plot.exists():
            plot.unlink()  # stale: the table's plot kind changed, or it has nothing to draw now
    plot = path.parent / f"curves_{path.stem}.png"
    if plots.curves_plot(table, records, plot):
        links.append(f"[training curves]({plot.name})")
    return links + bigs_plots.bigs_plots(path, table, records)


def files_of(path: Path, suffixes: tuple[str, ...] = ("md", "tex", "csv")) -> str:
    return " · ".join(f"[{suffix}]({path.stem}.{suffix})" for suffix in suffixes if path.with_suffix(f".{suffix}").exists())


OTHER_SUFFIXES = ("md", "json", "tex", "csv")  # a report of another command may keep its data as JSON


def heading_of(path: Path) -> str:
    """The first Markdown heading of a report file, for its line in the README ('—' when it has none)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip().replace("|", "\\|") or "—"
    return "—"


def report(results_dir: Path, output_root: Path) -> Path:
    lines = ["# Results", "", "Generated by `bench report` from the table files, the committed records "
             "(`records.jsonl`) and the local store.", ""]
    tables = [*sorted(results_dir.glob("table*.json"), key=lambda p: p.stem), *sorted(results_dir.glob("bigs_table*.json"))]
    # the studies (fidelity, precision, ...) are tables of the same renderer without a paper table behind them
    studies = [path for path in sorted(results_dir.glob("*.json")) if path not in tables
               and path.with_suffix(".md").exists() and "cells" in json.loads(path.read_text() or "{}")]
    records = [record for record in store.records(output_root, results_dir) if record.get("status") == "finished"]
    if tables:
        lines += ["## Coverage", "",
                  "A cell is one row, column and precision of a table. Per table: the cells at the paper's protocol "
                  "and the cells run at any budget, out of all its cells; the seed runs behind the cells, out of "
                  "those the shown budget plans; the fp32 cells with a paper number that ran at the paper's "
                  "protocol, out of those with a paper number; the mean absolute difference to the paper over "
                  "them; and the wall-clock compute of the runs behind the table (every process of a resumed run "
                  "counted; on the hardware each table's provenance names).", "",
                  "| table | budget shown | cells at the paper's protocol | cells run | seed runs | paper numbers "
                  "compared | mean abs. difference | compute |",
                  "|---|---|---|---|---|---|---|---|"]
        walls: dict[str, float] = {}
        for record in records:  # a run's committed copy holds its history; the local one may not
            run_dir = record.get("run_dir", "")
            walls[run_dir] = max(walls.get(run_dir, 0.0), compute_seconds(store.with_history(record)))
        lines += [coverage_row(json.loads(path.read_text()), walls) for path in tables]
    for heading, paths in (("Tables", tables), ("Studies", studies)):
        if not paths:
            continue
        lines += ["", f"## {heading}", "", "| table | title | budget | files | plots |", "|---|---|---|---|---|"]
        for path in paths:
            table = json.loads(path.read_text())
            links = table_plots(path, table, records)
            lines.append(f"| [{table['table']}]({path.stem}.md) | {table['title']} | {table['budget']} | "
                         f"{files_of(path)} | {', '.join(links) or '—'} |")
    if tables or studies:
        lines.append("")
    others = [extra for extra in sorted(results_dir.glob("*.md")) if extra.name != "README.md"
              and not extra.stem.startswith(("table", "bigs_table")) and extra.with_suffix(".json") not in studies]
    if others:  # the reports of the other commands (speed, probes, bag-of-words, ...): one line each, titled by its heading
        lines += ["## Other results", "", "| file | what it holds | files |", "|---|---|---|"]
        lines += [f"| [{extra.stem}]({extra.name}) | {heading_of(extra)} | {files_of(extra, OTHER_SUFFIXES)} |" for extra in others]
    readme = results_dir / "README.md"
    write_text_atomic(readme, "\n".join(lines).rstrip("\n") + "\n")
    return readme
