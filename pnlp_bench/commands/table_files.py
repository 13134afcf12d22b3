"""The files `bench table N` renders a table into: `results/<stem>.md`, `.tex`, `.csv` and `.json`.

The markdown and the LaTeX table are written from the same cell texts (ours ± std / paper / difference), so
the two never disagree; a cell whose runs failed says why in one short sentence (`cell_error`), while the
full error stays in the run's record and in the `.json` (`not_run`). Everything is a function of the cells
and the table file, never of the day it is rendered: re-rendering the same records gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnlp_bench.core import store
from pnlp_bench.core.atomic import write_text_atomic

if TYPE_CHECKING:
    from pnlp_bench.commands.table import Column, TableSpec

# Hub names a reader knows by another name (the cell says "mBERT weights", not the repository id).
WEIGHTS_NAMES = {"bert-base-multilingual-cased": "mBERT", "bert-base-multilingual-uncased": "mBERT"}
# Errors that say the run cannot be done on this machine (absent weights, data or package), not that it broke.
CANNOT_RUN_HERE = {"DataError", "FileNotFoundError", "ImportError", "ModuleNotFoundError"}
LONGEST_REASON = 60


def cell_error(error: str) -> str:
    """One short sentence for a table cell from a failed run's error line, e.g. "not run here: mBERT weights
    not available offline" or "run failed: out of memory"."""
    line = error.strip().splitlines()[0] if error.strip() else ""
    match = re.match(r"([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): (.*)", line)
    kind, detail = (match.group(1).rsplit(".", 1)[-1], match.group(2)) if match else ("", line)
    weights = re.search(r"the '([^']+)' weights are not available here", detail)
    if weights:
        return f"not run here: {WEIGHTS_NAMES.get(weights.group(1), weights.group(1))} weights not available offline"
    package = re.search(r"needs the `([^`]+)` package", detail)
    if package:
        return f"not run here: the {package.group(1)} package is not installed"
    if kind in {"MemoryError", "OutOfMemoryError"} or "out of memory" in detail.lower():
        return "run failed: out of memory"
    if re.search(r"\bnot found\b|\bfile missing\b", detail):
        return "not run here: its data is not on this machine"
    # otherwise the error's first clause, without the config key it starts with ("projection=bert: ...")
    clause = re.split(r" \(|; |\. ", re.sub(r"^[\w.]+=[\w.-]+: ", "", detail))[0].strip().rstrip(".") or kind or "unknown error"
    if len(clause) > LONGEST_REASON:
        clause = clause[:LONGEST_REASON].rsplit(" ", 1)[0] + " …"
    return f"{'not run here' if kind in CANNOT_RUN_HERE else 'run failed'}: {clause}"


def fmt(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} (n=1)" if std is None else f"{value:.1f} ± {std:.1f}"  # one run: no spread to show


def cell_text(cell: dict[str, Any]) -> str:
    """ours / paper (source) / difference, as both the markdown and the LaTeX table print it."""
    paper = "—" if cell["paper"] is None else f"{cell['paper']} {cell['paper_source']}".strip()
    if cell["paper"] is None and cell["paper_note"]:
        paper = f"{cell['paper_note']} {cell['paper_source']}".strip()
    diff = "" if cell["difference"] is None else f" / {cell['difference']:+.1f}"
    ours = fmt(cell["ours_mean"], cell["ours_std"])
    if cell["ours_mean"] is not None and cell.get("folds_run") is not None and cell["folds_run"] < cell["folds_planned"]:
        ours += f" ({cell['folds_run']} of {cell['folds_planned']} folds)"  # a partial cross-validation mean
    if cell["ours_mean"] is None and cell.get("not_run"):
        ours = cell_error(cell["not_run"])
    return f"{ours} / {paper}{diff}"


def body_rows(spec: TableSpec, columns: list[Column], cells: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows of plain text: model, precision, parameters, then one entry per column."""
    header = ["model", "precision", "params (ours / paper)", *[column.name for column in columns]]
    by_key = {(cell["row"], cell["precision"], cell["column"]): cell for cell in cells}
    rows = []
    for row in spec.rows:
        for precision in spec.precisions:
            first = by_key[(row.name, precision, spec.columns[0].name)]
            params = f"{first['params']:,}" if first["params"] else "—"
            entries = [cell_text(by_key[(row.name, precision, column.name)]) for column in columns]
            rows.append([row.name, precision, f"{params} / {row.paper_params or '—'}", *entries])
    return header, rows


def newest_run(cells: list[dict[str, Any]]) -> str:
    # dated by its newest run, not by the day it was rendered: re-rendering the same records gives the same file
    return max((date for cell in cells for date in cell["dates"]), default="no run yet")


def render_markdown(spec: TableSpec, columns: list[Column], budget: str, cells: list[dict[str, Any]],
                    sections: list[str] | None = None) -> str:
    described = spec.budgets[budget].get("description", "")
    lines = [f"# {spec.heading}: {spec.title}", "", f"Paper: {spec.source}.", "",
             f"Budget profile `{budget}`: {described}", ""]
    lines += [f"- {note}" for note in spec.notes]
    lines += ["", "Each cell: ours (mean ± std over seeds and folds; (n=1) for a single run) / paper (source) / difference. — means not given or not run.", ""]
    header, rows = body_rows(spec, columns, cells)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    by_key = {(cell["row"], cell["precision"], cell["column"]): cell for cell in cells}
    lines += ["", *(sections or [])] if sections else []
    lines += ["", "## Provenance", "", "| model | seeds run | epochs | budget | hardware | trained in | commit | date |",
              "|---|---|---|---|---|---|---|---|"]
    for row in spec.rows:
        cell = by_key[(row.name, spec.precisions[0], spec.columns[0].name)]
        # Columns may come from different runs (one per GLUE task, say): commits, dates, hardware and budgets
        # of all of the row's cells, so no run's provenance is hidden behind the first column's.
        row_cells = {(precision, column.name): by_key[(row.name, precision, column.name)] for precision in spec.precisions
                     for column in columns if (row.name, precision, column.name) in by_key}

        def union(field: str) -> list[str]:
            return sorted({value for each in row_cells.values() for value in each[field]})

        commits = ", ".join(union("commits")) + (" (dirty tree)" if any(each["dirty"] for each in row_cells.values()) else "")
        # columns whose seeds differ from the first column's are named (e.g. more seeds run for one task)
        differing = "; ".join(f"{column.name}: {row_cells[(spec.precisions[0], column.name)]['seeds']}"
                              for column in spec.columns[1:] if (spec.precisions[0], column.name) in row_cells
                              and row_cells[(spec.precisions[0], column.name)]["seeds"] != cell["seeds"])
        seeds = f"{cell['seeds'] or '—'} of {cell['seeds_planned']}" + (f" ({differing})" if differing else "")
        lines.append(
            f"| {row.name} | {seeds} | {cell['epochs'] or '—'} | "
            f"{'; '.join(union('budget_label')) or '—'} | {'; '.join(union('hardware')) or '—'} | "
            f"{', '.join(union('trained_in')) or '—'} | {commits or '—'} | "
            f"{', '.join(union('dates')) or '—'} |"
        )
    lines += ["", f"Generated by `bench table {spec.number} --budget {budget}` from `{spec.path.name}`; newest run "
              f"{newest_run(cells)}; code version {store.code_version()}.", ""]
    return "\n".join(lines)


# Text-mode LaTeX for every character that is not itself in LaTeX (the unicode ones work without packages).
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "—": "---", "–": "--", "×": r"$\times$",
    "≈": r"$\approx$", "≤": r"$\leq$", "≥": r"$\geq$", "→": r"$\rightarrow$", "…": r"\ldots{}",
}


def latex_escape(text: str) -> str:
    """Text as LaTeX: its special characters escaped, `code` in typewriter, a minus before a number a minus."""
    pieces = []
    for index, piece in enumerate(text.split("`") if text.count("`") % 2 == 0 else [text]):
        escaped = "".join(LATEX_SPECIAL.get(character, character) for character in piece)
        pieces.append(f"\\texttt{{{escaped}}}" if index % 2 else re.sub(r"(?<![\w.])-(?=\d)", "$-$", escaped))
    escaped = "".join(pieces)
    return "{}" + escaped if escaped.startswith("[") else escaped  # `\\ [` would read as the row's optional argument


def render_latex(spec: TableSpec, columns: list[Column], budget: str, cells: list[dict[str, Any]]) -> str:
    """The table as a booktabs `table` environment (needs `\\usepackage{booktabs}`), ready to paste."""
    header, rows = body_rows(spec, columns, cells)
    described = spec.budgets[budget].get("description", "").strip().rstrip(".")
    caption = (f"{spec.heading}: {spec.title}. Each cell: ours (mean ± std over seeds and folds; (n=1) for a single "
               f"run) / paper (source) / difference; — means not given or not run. Budget `{budget}`: {described}. "
               f"Paper: {spec.source}.")
    lines = [
        f"% results/{spec.stem}.tex: generated by `bench table {spec.number} --budget {budget}` from {spec.path.name}; "
        f"newest run {newest_run(cells)}; code version {store.code_version()}. Needs \\usepackage{{booktabs}}.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{tab:{spec.stem}}}",
        r"\begin{tabular}{llr" + "l" * len(columns) + "}",
        r"\toprule",
        " & ".join(latex_escape(name) for name in header) + r" \\",
        r"\midrule",
        *[" & ".join(latex_escape(entry) for entry in row) + r" \\" for row in rows],
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
        "",
    ]
    return "\n".join(lines)


def write_files(spec: TableSpec, columns: list[Column], budget: str, cells: list[dict[str, Any]], results_dir: Path,
                plot: dict[str, Any], sections: list[str] | None = None, extra: dict[str, Any] | None = None) -> list[Path]:
    """results/<stem>.md, .tex, .csv and .json; the json also carries how `bench report` draws the table, and
    `extra` (a BiGS table's claims and score against pretraining), whose markdown is `sections`."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / spec.stem
    paths = [stem.with_suffix(".md"), stem.with_suffix(".tex"), stem.with_suffix(".csv"), stem.with_suffix(".json")]
    written = {
        paths[0]: render_markdown(spec, columns, budget, cells, sections),
        paths[1]: render_latex(spec, columns, budget, cells),
        paths[3]: json.dumps({"table": spec.number, "title": spec.title, "budget": budget, "plot": plot, "cells": cells,
                              **(extra or {})}, indent=1),
    }
    for path, text in written.items():
        write_text_atomic(path, text)
    table = io.StringIO(newline="")
    # every key any cell has, in first-seen order (cross-validation cells add folds_run and folds_planned)
    writer = csv.DictWriter(table, fieldnames=list(dict.fromkeys(key for cell in cells for key in cell)), restval="")
    writer.writeheader()
    for cell in cells:
        writer.writerow({key: json.dumps(value) if isinstance(value, list) else value for key, value in cell.items()})
    write_text_atomic(paths[2], table.getvalue())
    return paths
