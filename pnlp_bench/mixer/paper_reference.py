"""The paper's numbers beside a run's own: the table `make run` ends with (BASE on the full MTOP English).

The paper's values are read from the table files, the one place they are written with their sources:
`experiments/table1.yaml`'s MinHash row (BASE, MTOP English eval exact match, 80.8) and `table5.yaml`'s BASE
row (its English test exact match, 81.8, an 8-bit model). A run gets the comparison when it is the cell those
rows hold, whatever its budget: the default model (BASE, MinHash) on the full MTOP English splits
(`data=mtop_en`, or `data=mtop data.languages=[en]`), changing nothing but `trainer.*`, `quantize.*` and the
seed (`reference_for`). Why our exact match sits about 15 points below the paper: `results/fidelity.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from pnlp_bench.core.identity import changed_keys

# The data options that load the full MTOP English splits (the sample, data=mtop_sample, is not the cell).
REFERENCE_DATA = ("mtop_en", "mtop")
# Keys a run may change and still be the paper's cell: how long and how it trains, the seed, the int8 copy.
FREE_KEYS = ("trainer.", "quantize.", "seed")
# (split, table file, row, column, what the paper's number is): where each reference number is read.
CELLS = (
    ("eval", "table1", "MinHash", "EM", "Table 1, MinHash row"),
    ("test", "table5", "BASE", "en", "Table 5, 8-bit"),
)
METRICS = ("exact_match", "intent_accuracy", "slot_f1")


@dataclass(frozen=True)
class PaperNumber:
    split: str
    metric: str
    value: float
    where: str  # "Table 5, 8-bit [T]": the paper's table and the row's source marker


def paper_numbers() -> list[PaperNumber]:
    """The paper's MTOP English exact match of BASE on eval and test, from the shipped table files."""
    folder = resources.files("pnlp_bench") / "experiments"
    numbers = []
    for split, table, row_name, column_name, what in CELLS:
        raw = yaml.safe_load((folder / f"{table}.yaml").read_text())
        column = next(column for column in raw["columns"] if column["name"] == column_name)
        row = next(row for row in raw["rows"] if row["name"] == row_name)
        value = row["paper"][column_name]
        source = value.get("source") if isinstance(value, dict) else None
        value = value["value"] if isinstance(value, dict) else value
        source = source or row.get("source") or raw["paper_source"]
        numbers.append(PaperNumber(split, column["metric"], float(value), f"{what} {source}"))
    return numbers


def reference_for(resolved: dict[str, Any], data_choice: str, defaults: dict[str, Any]) -> list[PaperNumber]:
    """The paper's numbers for a run of this resolved config (read view) and data option, or [] when the run
    is not the paper's cell (another model, projection, data set, language or subset)."""
    if data_choice not in REFERENCE_DATA:
        return []
    changed = changed_keys(resolved, defaults)
    if any(not key.startswith(FREE_KEYS) for key in changed):
        return []
    return paper_numbers()


def comparison_table(record: dict[str, Any], reference: list[PaperNumber]) -> Table:
    """Ours beside the paper's: eval and test exact match (fp32 and, when the run has it, int8), intent
    accuracy and slot F1, the paper's exact match and the difference; the caption holds budget, wall time and
    hardware."""
    paper = {(number.split, number.metric): number for number in reference}
    table = Table(title="BASE on MTOP English: ours beside the paper (arXiv 2202.04350 v1)")
    for name in ("split", "model", "exact match", "paper", "difference", "intent accuracy", "slot F1"):
        table.add_column(name, justify="left" if name in ("split", "model") else "right")
    for split in ("eval", "test"):
        for key, label in (("metrics", "ours fp32"), ("metrics_int8", "ours int8")):
            scores = record.get(key, {}).get(split, {}).get("en")
            if scores is None:
                continue
            reference_number = paper.get((split, "exact_match"))
            ours = scores["exact_match"]
            table.add_row(
                split,
                label,
                f"{ours:.1f}",
                f"{reference_number.value:.1f}" if reference_number else "-",
                f"{ours - reference_number.value:+.1f}" if reference_number else "-",
                f"{scores['intent_accuracy']:.1f}",
                f"{scores['slot_f1']:.1f}",
            )
    sources = ", ".join(f"{number.split} {number.where}" for number in reference)
    table.caption = escape(  # the sources' markers, [text] and [T], are not markup
        f"{record['budget']}, best epoch {record.get('best_epoch')}; "
        f"{record['wall_seconds'] / 60:.1f} min on {record['provenance']['device']}. "
        f"The paper's numbers: {sources}; it gives exact match only. "
        "Why ours is below them: results/fidelity.md"
    )
    return table
