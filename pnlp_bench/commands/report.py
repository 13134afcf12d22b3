"""`bench report`: plots beside the tables and `results/README.md` linking every table and plot.

- `params_vs_score_table<N>.png`: ours (mean over seeds) and the paper's score against parameters, for
  tables whose rows are size presets (the paper's accuracy-against-parameters figure);
- `curves_table<N>.png`: the eval metric per epoch of every run behind a table (the history each committed
  record carries, or the run folder's metrics.json for a record of the local store only).
`results/README.md` opens with the coverage of every table: cells at the paper's protocol, all cells, and the
mean absolute difference to the paper's numbers. Everything is read from `results/*.json`, the committed
records (`results/records.jsonl`) and the local store; nothing is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pnlp_bench.core import store
from pnlp_bench.core.atomic import write_text_atomic

PARAM_SUFFIX = {"K": 1e3, "M": 1e6}


def paper_params(text: str) -> float | None:
    text = text.split("/")[0].strip()
    if text and text[-1] in PARAM_SUFFIX:
        try:
            return float(text[:-1]) * PARAM_SUFFIX[text[-1]]
        except ValueError:
            return None
    return None


def params_plot(table: dict[str, Any], path: Path) -> bool:
    """Score of the table's last column (its average) against parameters; False when it has no such rows."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    columns = [cell["column"] for cell in table["cells"]]
    last = columns[-1]
    cells = [c for c in table["cells"] if c["column"] == last and c["precision"] == "fp32"]
    ours = [(c["params"], c["ours_mean"], c["row"]) for c in cells if c["params"] and c["ours_mean"] is not None]
    paper = [(paper_params(c["paper_params"]), c["paper"], c["row"]) for c in cells if c["paper"] is not None]
    paper = [point for point in paper if point[0]]
    if len(ours) + len(paper) < 2:
        return False
    figure, axes = pyplot.subplots(figsize=(6, 4))
    for points, label, marker in ((ours, f"ours ({table['budget']} budget)", "o"), (paper, "paper", "s")):
        if points:
            points.sort()
            axes.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=label)
            for x, y, name in points:
                axes.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axes.set_xscale("log")
    axes.set_xlabel("parameters")
    axes.set_ylabel(f"{last} ({cells[0]['metric']})")
    axes.set_title(f"Table {table['table']}: {table['title']}", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return True


def history_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    if "history" in record:
        return record["history"]
    metrics_path = Path(record.get("run_dir", "")) / "metrics.json"
    if not metrics_path.exists():
        return []
    return json.loads(metrics_path.read_text()).get("history", [])


def curves_plot(table: dict[str, Any], output_root: Path, path: Path, results_dir: Path | None = None) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    # the runs behind the table's cells (tables written before cells kept their run folders: same commits)
    run_dirs = {run_dir for cell in table["cells"] for run_dir in cell.get("run_dirs", [])}
    commits = {commit for cell in table["cells"] for commit in cell["commits"]}
    wanted = {(cell["row"], tuple(cell["seeds"])) for cell in table["cells"]}
    figure, axes = pyplot.subplots(figsize=(6, 4))
    drawn, seen = 0, set()
    for record in store.records(output_root, results_dir):
        if record.get("status") != "finished" or record.get("run_dir") in seen:
            continue
        if record.get("run_dir") not in run_dirs if run_dirs else record["provenance"]["commit"][:10] not in commits:
            continue
        history = history_of(record)
        if not history:
            continue
        seen.add(record.get("run_dir"))
        key = f"eval_{record['monitor']}"
        if history and key in history[0]:
            label = f"{record['model']} seed {record['seed']}"
            axes.plot([h["epoch"] for h in history], [h[key] for h in history], marker=".", label=label)
            drawn += 1
    if not drawn or not wanted:
        pyplot.close(figure)
        return False
    axes.set_xlabel("epoch")
    axes.set_ylabel("eval metric (the run's selection metric)")
    axes.set_title(f"Table {table['table']}: training curves", fontsize=9)
    if drawn <= 12:
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return True


def coverage_row(table: dict[str, Any], walls: dict[str, float]) -> str:
    """Cells at the paper's protocol / all cells with a paper number, the mean |ours - paper| over them, and
    the compute of the runs behind the table (their wall-clock hours, from `walls`: run folder -> seconds)."""
    cells = [cell for cell in table["cells"] if cell["precision"] == "fp32" and cell["paper"] is not None]
    ours = [cell for cell in cells if cell["ours_mean"] is not None]
    paper = [cell for cell in ours if any(label.endswith("paper protocol") and "not the" not in label
                                          for label in cell.get("budget_label", []))]
    differences = [abs(cell["difference"]) for cell in paper if cell["difference"] is not None]
    mean = f"{sum(differences) / len(differences):.1f}" if differences else "—"
    runs = {run_dir for cell in table["cells"] for run_dir in cell.get("run_dirs", [])}
    known = [walls[run_dir] for run_dir in runs if run_dir in walls]
    compute = f"{len(runs)} runs, {sum(known) / 3600:.1f} h" if known else f"{len(runs)} runs, no record here"
    return (f"| [{table['table']}]({stem_of(table)}.md) | {table['budget']} | {len(paper)} / {len(cells)} | "
            f"{len(ours)} / {len(cells)} | {mean} | {compute} |")


def stem_of(table: dict[str, Any]) -> str:
    number = str(table["table"])
    return f"table{number}" if number.isdigit() else number


def report(results_dir: Path, output_root: Path) -> Path:
    lines = ["# Results", "", "Generated by `bench report` from the table files, the committed records "
             "(`records.jsonl`) and the local store.", ""]
    tables = [*sorted(results_dir.glob("table*.json"), key=lambda p: p.stem), *sorted(results_dir.glob("bigs_table*.json"))]
    if tables:
        lines += ["## Coverage", "",
                  "Cells with a paper number (fp32): how many ran at the paper's protocol, how many ran at all "
                  "(any budget), the mean absolute difference to the paper over the paper-protocol cells, and the "
                  "wall-clock compute of the runs behind the table (on the hardware each table's provenance names).", "",
                  "| table | budget shown | at the paper's protocol | run | mean abs. difference | compute |",
                  "|---|---|---|---|---|---|"]
        walls = {record.get("run_dir", ""): float(record.get("wall_seconds", 0.0))
                 for record in store.records(output_root, results_dir) if record.get("status") == "finished"}
        lines += [coverage_row(json.loads(path.read_text()), walls) for path in tables]
        lines += ["", "## Tables", ""]
    if tables:
        lines += ["| table | title | budget | plots |", "|---|---|---|---|"]
    for path in tables:
        table = json.loads(path.read_text())
        plots = []
        plot = results_dir / f"params_vs_score_{path.stem}.png"
        # the size presets' figure of the paper; BiGS tables compare architectures at one size
        if not path.stem.startswith("bigs_") and params_plot(table, plot):
            plots.append(f"[score vs parameters]({plot.name})")
        plot = results_dir / f"curves_{path.stem}.png"
        if curves_plot(table, output_root, plot, results_dir):
            plots.append(f"[training curves]({plot.name})")
        lines.append(
            f"| [{table['table']}]({path.stem}.md) | {table['title']} | {table['budget']} | {', '.join(plots) or '—'} |"
        )
    for extra in sorted(results_dir.glob("*.md")):
        if extra.name != "README.md" and not extra.stem.startswith(("table", "bigs_table")):
            lines.append(f"\nAlso: [{extra.stem}]({extra.name})")
    readme = results_dir / "README.md"
    write_text_atomic(readme, "\n".join(lines) + "\n")
    return readme
