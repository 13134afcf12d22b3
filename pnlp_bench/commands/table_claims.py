"""What a BiGS table says beyond its cells: an average column, the paper's claims tested with their seed spread,
and the score against pretraining across budgets. Each comes from a key of the table file:

* `average: {name: GLUE avg, weights: {<column>: weight, ...}}`: per seed, the weighted mean of those columns
  (GLUE's convention: a task with two metrics counts each at half weight), over the seeds that have them all.
  A list of such entries gives several averages (for example one without a task whose runs collapsed).
* `claims: {metrics: [...], margin: 1.0, statements: [{text, row, relation, than: [rows]}]}`: each statement
  compared per metric, paired by fine-tuning seed (the same seed gives every variant the same data order):
  d = mean over seeds of (row - other), s = its standard error (std of the paired differences / sqrt(n)).
  `below`: holds when d < -2s, does not hold when d > 2s, else cannot tell. `equal` ("about equal"): holds when
  |d| <= 2s and |d| <= margin, does not hold when |d| > 2s and |d| > margin, else cannot tell (the spread is
  too wide to say). Fewer than two paired seeds: cannot tell.
* `scaling: {budgets: [...], columns: [...]}`: for each budget (several snapshots of one pretraining, budget
  key `pretrain_step`), each row's pretraining dev MLM loss and tokens, and the columns' mean ± std over seeds:
  the paper's evidence, downstream score against MLM loss.

Everything is read from finished records (the local store and results/records.jsonl), as the cells are.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pnlp_bench.core.registry import ConfigError

if TYPE_CHECKING:
    from pnlp_bench.commands.table import TableSpec

RELATIONS = ("below", "equal")


def loss_column() -> Any:
    from pnlp_bench.commands.table import Column
    from pnlp_bench.core.record import SELECTION_SPLIT

    return Column(name="MLM dev loss", metric="mlm_loss", split=SELECTION_SPLIT, language="")


def averages_of(spec: TableSpec) -> list[dict[str, Any]]:
    """The table file's `average` entries: none, one (a mapping) or several (a list of them)."""
    if not spec.average:
        return []
    return list(spec.average) if isinstance(spec.average, list) else [spec.average]


def check_spec(spec: TableSpec) -> None:
    """The average, claims and scaling keys name real columns, rows, budgets and relations."""
    columns = [column.name for column in spec.columns]
    averages = averages_of(spec)
    for average in averages:
        if not isinstance(average, dict) or not average.get("name") or not average.get("weights"):
            raise ConfigError(f"{spec.path}: each average needs a name and weights, got {average!r}")
    names = columns + [average["name"] for average in averages]
    rows = [row.name for row in spec.rows]
    for average in averages:
        for column in average["weights"]:
            if column not in columns:
                raise ConfigError(f"{spec.path}: average weight for {column!r}, not a column; valid: {', '.join(columns)}")
    claims = spec.claims or {}
    for metric in claims.get("metrics", []):
        if metric not in names:
            raise ConfigError(f"{spec.path}: claims metric {metric!r} is not a column; valid: {', '.join(names)}")
    for statement in claims.get("statements", []):
        if statement.get("relation") not in RELATIONS:
            raise ConfigError(f"{spec.path}: claim {statement.get('text')!r}: relation must be one of {', '.join(RELATIONS)}")
        for name in [statement.get("row"), *statement.get("than", [])]:
            if name not in rows:
                raise ConfigError(f"{spec.path}: claim {statement.get('text')!r} names row {name!r}; valid: {', '.join(rows)}")
    scaling = spec.scaling or {}
    for budget in scaling.get("budgets", []):
        if budget not in spec.budgets:
            raise ConfigError(f"{spec.path}: scaling budget {budget!r}; valid: {', '.join(spec.budgets)}")
    for metric in scaling.get("columns", []):
        if metric not in names:
            raise ConfigError(f"{spec.path}: scaling column {metric!r} is not a column; valid: {', '.join(names)}")


def seed_values(spec: TableSpec, budget: str, output_root: Path, results_dir: Path | None) -> dict[tuple[str, str], dict[int, float]]:
    """(row, column) -> {seed: value} of the finished fp32 runs, with the average column where the table has one."""
    from pnlp_bench.commands import table as tables

    cells, done = tables.plan(spec, budget, output_root, results_dir)
    values: dict[tuple[str, str], dict[int, float]] = {}
    for row, group, seed, _, identity in cells:
        if identity not in done:
            continue
        for column in spec.columns:
            if group in spec.column_groups(column, budget):
                value = tables.metric_of(done[identity], column, "fp32")
                if value is not None:
                    values.setdefault((row.name, column.name), {})[seed] = value
    for average in averages_of(spec):
        weights = average["weights"]
        for row in spec.rows:
            per_column = [values.get((row.name, column), {}) for column in weights]
            seeds = set.intersection(*(set(found) for found in per_column)) if per_column else set()
            if seeds:
                total = sum(weights.values())
                values[(row.name, average["name"])] = {
                    seed: sum(weight * found[seed] for weight, found in zip(weights.values(), per_column)) / total
                    for seed in sorted(seeds)
                }
    return values


def compare(mine: dict[int, float], other: dict[int, float], relation: str, margin: float) -> dict[str, Any]:
    """The paired difference of two rows over their common seeds and what it says about `relation`."""
    seeds = sorted(set(mine) & set(other))
    differences = [mine[seed] - other[seed] for seed in seeds]
    if len(differences) < 2:
        mean = differences[0] if differences else None
        return {"seeds": seeds, "difference": mean, "stderr": None, "verdict": "cannot tell (fewer than 2 seeds)"}
    mean = statistics.fmean(differences)
    stderr = statistics.stdev(differences) / math.sqrt(len(differences))
    if relation == "below":
        verdict = "holds" if mean < -2 * stderr else "does not hold" if mean > 2 * stderr else "cannot tell"
    elif abs(mean) <= 2 * stderr and abs(mean) <= margin:
        verdict = "holds"
    elif abs(mean) > 2 * stderr and abs(mean) > margin:
        verdict = "does not hold"
    else:
        verdict = "cannot tell"
    return {"seeds": seeds, "difference": mean, "stderr": stderr, "verdict": verdict}


def combine(verdicts: list[str]) -> str:
    """A statement against several rows holds only if it holds against each."""
    if any(verdict == "does not hold" for verdict in verdicts):
        return "does not hold"
    if verdicts and all(verdict == "holds" for verdict in verdicts):
        return "holds"
    return "cannot tell"


def evaluate_claims(spec: TableSpec, values: dict[tuple[str, str], dict[int, float]]) -> list[dict[str, Any]]:
    claims = spec.claims or {}
    margin = float(claims.get("margin", 1.0))
    found = []
    for statement in claims.get("statements", []):
        for metric in claims.get("metrics", []):
            mine = values.get((statement["row"], metric), {})
            against = [(other, compare(mine, values.get((other, metric), {}), statement["relation"], margin))
                       for other in statement["than"]]
            found.append({"claim": statement["text"], "metric": metric, "relation": statement["relation"],
                          "row": statement["row"], "margin": margin,
                          "against": [{"row": other, **result} for other, result in against],
                          "verdict": combine([result["verdict"].split(" (")[0] for _, result in against])})
    return found


def scaling_points(spec: TableSpec, output_root: Path, results_dir: Path | None) -> list[dict[str, Any]]:
    """Per budget and row: the pretraining's tokens and dev MLM loss there, and the columns' mean ± std."""
    from pnlp_bench.commands import table as tables

    from pnlp_bench.core import store

    scaling = spec.scaling or {}
    done = store.finished(output_root, results_dir)  # what `plan` reads, without composing every cell again
    points = []
    dev_loss = loss_column()
    for budget in scaling.get("budgets", []):
        values = seed_values(spec, budget, output_root, results_dir)
        step = spec.budgets[budget].get("pretrain_step")
        for row in spec.rows_for(budget):
            record = done.get(tables.pretraining_identity(spec, row, budget))
            loss, tokens = None, None
            encoder = (record or {}).get("parameters", {}).get("encoder")
            if record is not None:
                if step is None:
                    loss = tables.metric_of(record, dev_loss, "fp32")
                    tokens = record.get("tokens_seen")
                else:
                    snap = next((snap for snap in record.get("snapshots", []) if snap["step"] == step), None)
                    loss, tokens = (snap["mlm_loss"], snap["tokens_seen"]) if snap else (None, None)
            scores = {}
            for column in scaling.get("columns", []):
                found = list(values.get((row.name, column), {}).values())
                scores[column] = {"mean": statistics.fmean(found) if found else None,
                                  "std": statistics.stdev(found) if len(found) > 1 else None, "n": len(found)}
            points.append({"budget": budget, "row": row.name, "encoder_parameters": encoder, "tokens": tokens,
                           "mlm_loss": loss, "scores": scores})
    return points


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def claims_markdown(claims: list[dict[str, Any]], budget: str) -> list[str]:
    if not claims:
        return []
    margin = claims[0]["margin"]
    lines = ["## The paper's claims", "",
             f"Budget `{budget}`. Paired by fine-tuning seed: d = the mean over seeds of (row - other), s = its standard "
             f"error. \"below\" holds when d < -2s and does not hold when d > 2s; \"about equal\" holds when |d| <= 2s "
             f"and |d| <= {margin:g} point(s), does not hold when both are exceeded; anything else, or fewer than two "
             "seeds, cannot tell at this scale.", "",
             "| claim | metric | against | d ± s (seeds) | verdict |", "|---|---|---|---|---|"]
    for claim in claims:
        against = "; ".join(
            f"{other['row']}: {number(other['difference'])} ± {number(other['stderr'])} ({len(other['seeds'])})"
            for other in claim["against"])
        names = ", ".join(other["row"] for other in claim["against"])
        lines.append(f"| {claim['claim']} | {claim['metric']} | {names} | {against} | **{claim['verdict']}** |")
    return lines + [""]


def scaling_markdown(points: list[dict[str, Any]], columns: list[str]) -> list[str]:
    if not points:
        return []
    lines = ["## Score against pretraining", "",
             "Each row's pretraining at each budget (snapshots of one run: the cpu_1x and cpu_3x budgets are its "
             "weights at 1/10 and 3/10 of the steps), its encoder's parameters (embeddings and heads apart: the "
             "variants are matched on these), the tokens it had seen, its dev MLM loss there, and the fine-tuned "
             "dev scores (mean ± std over seeds; (n=1) for one run).", "",
             "| row | budget | encoder parameters | tokens | MLM dev loss | perplexity | " + " | ".join(columns) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(columns)]
    for point in points:
        scores = []
        for column in columns:
            score = point["scores"][column]
            spread = "" if score["mean"] is None else f" ± {score['std']:.1f}" if score["std"] is not None else " (n=1)"
            scores.append(number(score["mean"]) + spread)
        tokens = f"{point['tokens'] / 1e6:.1f}M" if point["tokens"] else "—"
        perplexity = None if point["mlm_loss"] is None else math.exp(point["mlm_loss"])
        encoder = f"{point['encoder_parameters']:,}" if point.get("encoder_parameters") else "—"
        lines.append(f"| {point['row']} | {point['budget']} | {encoder} | {tokens} | {number(point['mlm_loss'], 3)} | "
                     f"{number(perplexity)} | " + " | ".join(scores) + " |")
    return lines + [""]


# an output root without a store: only the committed records are read (a fresh clone's view)
NO_LOCAL_STORE = Path("/nonexistent/pnlp-bench-no-local-store")


def analysis(spec: TableSpec, budget: str, output_root: Path | None, results_dir: Path | None) -> tuple[list[str], dict[str, Any]]:
    """The markdown sections and json entries the table file's `average`, `claims` and `scaling` ask for, from the
    committed records and `output_root`'s store (None: the committed records alone)."""
    if not (spec.average or spec.claims or spec.scaling):
        return [], {}
    output_root = output_root if output_root is not None else NO_LOCAL_STORE
    values = seed_values(spec, budget, output_root, results_dir)
    claims = evaluate_claims(spec, values)
    points = scaling_points(spec, output_root, results_dir)
    columns = (spec.scaling or {}).get("columns", [])
    sections = claims_markdown(claims, budget) + scaling_markdown(points, columns)
    extra: dict[str, Any] = {"claims": claims, "scaling": points}
    if (spec.pretrain or {}).get("baseline"):
        extra["pretraining_baseline"] = spec.pretrain["baseline"]
    def per_row(name: str) -> dict[str, list]:
        return {row.name: sorted(values.get((row.name, name), {}).items()) for row in spec.rows}

    averages = averages_of(spec)
    if isinstance(spec.average, dict):
        extra["average"] = per_row(spec.average["name"])
    elif averages:
        extra["average"] = {average["name"]: per_row(average["name"]) for average in averages}
    return sections, extra
