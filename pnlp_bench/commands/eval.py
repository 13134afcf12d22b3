"""`bench eval RUN_DIR [data=NAME] [data.<key>=…] [split=test] [trainer.<key>=…] [quantize.<key>=…]`: a finished
pNLP-Mixer run's best checkpoint scored on other data without training (pnlp_bench/mixer/evaluate.py).

The record goes to `RUN_DIR/eval/<identity>/` and to the local store of `--output-root` (`output_root=`),
which defaults to the run's own output root (the folder holding `runs/<data>/<run>`), else $BENCH_OUTPUT_ROOT.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def output_root_of(run_dir: Path) -> Path:
    """`<root>/runs/<data>/<run>` belongs to `<root>`; a folder elsewhere to $BENCH_OUTPUT_ROOT (or ./outputs)."""
    resolved = run_dir.resolve()
    if len(resolved.parents) > 2 and resolved.parents[1].name == "runs":
        return resolved.parents[2]
    return Path(os.environ.get("BENCH_OUTPUT_ROOT", "outputs"))


def print_evaluation(record: dict[str, Any], console: Console) -> None:
    evaluation = record["evaluation"]
    split = evaluation["split"]
    table = Table(title=f"{record['model']} ({evaluation['source']['config_hash']}) on {record['data']} {split}")
    table.add_column("language")
    names = [name for name in record["metrics"][split]["avg"] if name != "examples"]
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("examples", justify="right")
    for key, suffix in (("metrics", ""), ("metrics_int8", " int8")):
        for language, scores in record.get(key, {}).get(split, {}).items():
            table.add_row(language + suffix, *(f"{scores[name]:.2f}" for name in names), str(scores["examples"]))
    console.print(table)
    labels, tags = evaluation["unknown_labels"], evaluation["unknown_tags"]
    console.print(
        f"unknown to the model (counted wrong): {labels['examples']} of {evaluation['examples']} examples by their label"
        f" ({len(labels['names'])} labels), {tags['examples']} by a tag ({tags['words']} words, {len(tags['names'])} tags)"
    )
    console.print(f"record: {Path(record['run_dir']) / 'metrics.json'}")


def main(argv: Sequence[str]) -> int:
    from pnlp_bench.core.errors import OneLineError
    from pnlp_bench.core.files import DataError
    from pnlp_bench.mixer.evaluate import evaluate, plan_evaluation

    parser = argparse.ArgumentParser(prog="bench eval", description="Score a finished run's best checkpoint on other data.")
    parser.add_argument("run_dir", type=Path, help="a run folder of `bench run` (metrics.json, config.yaml, best.pt)")
    parser.add_argument("overrides", nargs="*", help="data=NAME, data.<key>=…, split=…, trainer.<key>=…, quantize.<key>=…")
    parser.add_argument("--output-root", type=Path, help="whose local store gets the record (default: the run's)")
    args = parser.parse_args(list(argv))
    quiet = "quiet=true" in args.overrides
    overrides = [arg for arg in args.overrides if arg != "quiet=true"]
    roots = [arg.partition("=")[2] for arg in overrides if arg.startswith("output_root=")]
    overrides = [arg for arg in overrides if not arg.startswith("output_root=")]
    output_root = Path(roots[-1]) if roots else args.output_root or output_root_of(args.run_dir)
    console = Console(quiet=quiet)
    plan = plan_evaluation(args.run_dir, overrides)
    try:
        with console.status(f"evaluating {args.run_dir.name} on {plan.data_name} {plan.split}"):
            record, ran = evaluate(plan, output_root)
    except DataError as error:  # missing or malformed data: its one line names the file
        raise OneLineError(str(error)) from None
    if not ran:
        console.print(f"already evaluated with these arguments and code: {plan.eval_dir / 'metrics.json'}")
    print_evaluation(record, console)
    return 0
