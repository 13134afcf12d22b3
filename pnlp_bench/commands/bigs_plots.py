"""The figures of a BiGS table that `bench report` draws beside it (from its `results/<stem>.json` and records):

- `mlm_curves_<stem>.png`: each row's pretraining, dev MLM loss against tokens seen (every evaluation of the
  run's history), with the add-one unigram baseline the pretraining must leave far behind, and the level of a
  model that reads no context at all (the unigram plus the token a non-[MASK] position shows; bigs/baselines.py);
- `score_vs_pretraining_<stem>.png`: the paper's evidence, each downstream column of the table file's
  `scaling:` against the dev MLM loss of the pretraining it started from, one line per row through its
  budgets (1x, 3x, 10x tokens), error bars the std over fine-tuning seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pnlp_bench.commands.plots import history_of, pyplot, rows_of, save

PRETRAINING_COLUMN_METRIC = "perplexity"


def pretraining_records(table: dict[str, Any], records: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(row, record) of each row's pretraining behind the table, in the table's row order."""
    by_run = {record.get("run_dir"): record for record in records if record.get("status") == "finished"}
    found = []
    for cell in table["cells"]:
        if cell["metric"].endswith(f"/{PRETRAINING_COLUMN_METRIC}") and cell["precision"] == "fp32":
            for run_dir in cell.get("run_dirs", []):
                if run_dir in by_run and by_run[run_dir].get("task") == "mlm":
                    found.append((cell["row"], by_run[run_dir]))
    order = rows_of(table)
    return sorted(found, key=lambda item: order.index(item[0]))


def mlm_curves_figure(table: dict[str, Any], records: list[dict[str, Any]]) -> Any | None:
    runs = [(row, record) for row, record in pretraining_records(table, records) if history_of(record)]
    if not runs:
        return None
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.get_cmap("tab10").colors
    baselines, context_free = [], []
    for index, (row, record) in enumerate(runs):
        per_step = record["tokens_seen"] / record["steps"] if record.get("steps") else 0
        points = [(entry["step"] * per_step / 1e6, entry["eval_mlm_loss"]) for entry in history_of(record) if "eval_mlm_loss" in entry]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=".", color=colours[index % 10],
                  label=f"{row} (final perplexity {math.exp(points[-1][1]):.0f})")
        if record.get("unigram_baseline"):
            baselines.append(record["unigram_baseline"]["mlm_loss"])
        if record.get("context_free_baseline"):
            context_free.append(record["context_free_baseline"]["mlm_loss"])
    stated = table.get("pretraining_baseline") or {}
    if not baselines and stated:  # runs older than the recorded baseline
        baselines.append(stated["mlm_loss"])
    if not context_free and stated.get("context_free"):
        context_free.append(stated["context_free"]["mlm_loss"])
    if context_free:
        axes.axhline(context_free[0], color="black", linestyle="-.", linewidth=0.8,
                     label=f"no context: unigram + the token shown (perplexity {math.exp(context_free[0]):.0f})")
    if baselines:
        level = baselines[0]
        axes.axhline(level, color="grey", linestyle="--", label=f"add-one unigram baseline (perplexity {math.exp(level):.0f})")
        axes.axhline(level - math.log(3), color="grey", linestyle=":", label=f"a third of its perplexity ({math.exp(level) / 3:.0f})")
    axes.set_xlabel("pretraining tokens seen (millions)")
    axes.set_ylabel("dev MLM loss (nats per masked token)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    axes.set_title(f"{table['table']}: masked-LM pretraining on WikiText-2, dev loss", fontsize=9)
    figure.tight_layout()
    return figure


def score_vs_pretraining_figure(table: dict[str, Any]) -> Any | None:
    points = [point for point in table.get("scaling", []) if point["mlm_loss"] is not None]
    columns = list(dict.fromkeys(column for point in points for column, score in point["scores"].items()
                                 if score["mean"] is not None))
    if not columns:
        return None
    plt = pyplot()
    figure, axes_list = plt.subplots(1, len(columns), figsize=(6.0 * len(columns), 4.3), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    order = rows_of(table)
    for axes, column in zip(axes_list[0], columns):
        for row in order:
            mine = sorted((point for point in points if point["row"] == row and point["scores"][column]["mean"] is not None),
                          key=lambda point: -point["mlm_loss"])
            if not mine:
                continue
            axes.errorbar([point["mlm_loss"] for point in mine], [point["scores"][column]["mean"] for point in mine],
                          yerr=[point["scores"][column]["std"] or 0.0 for point in mine], marker="o", capsize=3,
                          color=colours[order.index(row) % 10], label=row)
            for point in mine:
                axes.annotate(f"{point['tokens'] / 1e6:.0f}M" if point["tokens"] else "", (point["mlm_loss"], point["scores"][column]["mean"]),
                              textcoords="offset points", xytext=(4, 4), fontsize=6)
        axes.invert_xaxis()  # more pretraining to the right, as the paper's figure reads
        axes.set_xlabel("pretraining dev MLM loss (lower is better)")
        axes.set_ylabel(f"{column} (dev, mean ± std over seeds)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(f"{table['table']}: downstream score against pretraining (points labelled with tokens seen)", fontsize=9)
    figure.tight_layout()
    return figure


def bigs_plots(path: Path, table: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Draws the figures above beside the table at `path` (its .json); returns their markdown links."""
    links = []
    for prefix, text, figure in (
        ("mlm_curves", "pretraining curves (dev MLM loss against tokens)", lambda: mlm_curves_figure(table, records)),
        ("score_vs_pretraining", "score against pretraining", lambda: score_vs_pretraining_figure(table)),
    ):
        plot = path.parent / f"{prefix}_{path.stem}.png"
        # the curves wherever the table has pretrainings; the score figure only where it names its budgets
        if (prefix == "mlm_curves" or "scaling" in table) and save(figure(), plot):
            links.append(f"[{text}]({plot.name})")
        elif plot.exists():
            plot.unlink()
    return links
