"""`bench bow data=NAME [OVERRIDES...] [--folds 0-9] [--grid 0.1,1,10,100] [--min-df 2] [--output PATH]`:
a TF-IDF + logistic regression reference on a classification data set (pnlp_bench/mixer/bow.py), on exactly
the splits a `bench run` with the same data overrides trains, selects and tests on.

Cross-validated data (Hyperpartisan's `data.options.split=cv10`) runs each fold of `--folds` and reports the
mean ± std over them, as Table 7 does. Writes ``<output>.json`` and ``<output>.md`` (default
results/bow_<data>) with the commit and hardware, rewritten after each fold so an interrupted run keeps its
folds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import torch

from pnlp_bench.commands.speed.harness import hardware, load_averages, provenance_lines, write_report
from pnlp_bench.core.compose import compose, options
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.provenance import provenance
from pnlp_bench.core.registry import typed_config
from pnlp_bench.mixer.bow import evaluate
from pnlp_bench.commands.table import summarise
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.hyperpartisan import FOLDS
from pnlp_bench.mixer.data.loaders import load_data



def parse_folds(text: str) -> list[int]:
    folds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            folds += list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise OneLineError(f"--folds: {text!r} is not a list of folds such as 0-9 or 0,3,5") from None
    bad = [fold for fold in folds if not 0 <= fold < FOLDS]
    if bad or not folds:
        raise OneLineError(f"--folds: folds run 0-{FOLDS - 1}, got {text!r}")
    return folds


def parse_grid(text: str) -> list[float]:
    try:
        grid = [float(value) for value in text.split(",")]
    except ValueError:
        raise OneLineError(f"--grid: {text!r} is not a comma-separated list of numbers") from None
    if not grid or any(value <= 0 for value in grid):
        raise OneLineError(f"--grid: every C must be > 0, got {text!r}")
    return grid


def spread(values: list[float]) -> str:
    mean, std = summarise(values)
    return f"{mean:.1f} (n=1)" if std is None else f"{mean:.1f} ± {std:.1f}"


def render_markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    metrics = [name for name in ("f1", "accuracy", "macro_f1") if all(name in run["scores"]["test"] for run in runs)]
    folded = runs and runs[0]["fold"] is not None
    lines = [
        f"# Bag-of-words reference on {result['data']} (`bench bow`)",
        "",
        f"Command: `{result['command']}`.",
        *provenance_lines(result["provenance"], result["hardware"], "no GPU."),
        "",
        "TF-IDF unigrams (lower-cased words of the loader, in at least "
        f"{result['min_df']} training documents) and an L2-regularised logistic regression fitted with L-BFGS "
        "(pnlp_bench/mixer/bow.py), on the splits a `bench run` with the same data overrides uses. The "
        f"regularisation C is chosen from {result['grid']} by the eval split's {result['monitor']}; the test split is "
        "read once with that model. No seed: the fit is deterministic.",
        "",
    ]
    if runs:
        summary = " · ".join(f"test {name} {spread([run['scores']['test'][name] for run in runs])}" for name in metrics)
        lines += [f"**{'Mean ± std over folds ' + ', '.join(str(r['fold']) for r in runs) if folded else 'Result'}:** "
                  f"{summary}; eval {result['monitor']} {spread([run['scores']['eval'][result['monitor']] for run in runs])}.", ""]
    lines += [
        "| " + ("fold | " if folded else "") + "C | vocabulary | train / eval / test | eval " + result["monitor"] + " | "
        + " | ".join(f"test {name}" for name in metrics) + " | seconds |",
        "|" + "---|" * (5 + len(metrics) + (1 if folded else 0)),
    ]
    for run in runs:
        counts = " / ".join(f"{run['examples'].get(split, 0):,}" for split in ("train", "eval", "test"))
        lines.append(
            "| " + (f"{run['fold']} | " if folded else "") + f"{run['C']:g} | {run['vocabulary']:,} | {counts} | "
            f"{run['scores']['eval'][result['monitor']]:.1f} | "
            + " | ".join(f"{run['scores']['test'][name]:.1f}" for name in metrics) + f" | {run['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench bow", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="data overrides as bench run takes them (data=imdb, data.options.split=...)")
    parser.add_argument("--folds", default=f"0-{FOLDS - 1}", help="cross-validated data: the test folds to run")
    parser.add_argument("--grid", default="0.1,1,10,100,1000", help="the regularisation strengths C to choose from")
    parser.add_argument("--min-df", type=int, default=2, help="a word counts once in this many training documents")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="writes <output>.json and <output>.md (default results/bow_<data>)")
    args = parser.parse_args(list(argv))
    bad = [item for item in args.overrides if "=" not in item or item.startswith("-")]
    if bad:
        raise OneLineError(f"bench bow: {bad[0]!r} is not a key=value override")
    if args.min_df < 1 or args.threads < 1:
        raise OneLineError(f"--min-df and --threads must be >= 1, got {args.min_df} and {args.threads}")
    grid = parse_grid(args.grid)
    cfg = compose(list(args.overrides))
    data_config = typed_config(DataConfig, options(cfg.data), "data")
    if data_config.head != "classification":
        raise OneLineError(f"bench bow: data={data_config.name} is not a classification data set (head {data_config.head!r})")
    split_options = dict(data_config.options)
    folded = "fold" in split_options and split_options.get("split", "cv10") == "cv10"
    folds: list[int | None] = parse_folds(args.folds) if folded else [None]
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    output = args.output or f"results/bow_{data_config.name}"
    result: dict[str, Any] = {"command": " ".join(["bench bow", *argv]), "provenance": provenance(device),
                              "hardware": hardware(device), "data": data_config.name, "overrides": list(args.overrides),
                              "monitor": data_config.monitor, "grid": grid, "min_df": args.min_df, "runs": []}
    for fold in folds:
        started = time.perf_counter()
        config = data_config if fold is None else DataConfig(**{**vars(data_config), "options": {**split_options, "fold": fold}})
        splits = load_data(config).splits
        run = evaluate(splits, grid, data_config.monitor, args.min_df)
        run.update(fold=fold, seconds=time.perf_counter() - started)
        result["runs"].append(run)
        result["hardware"]["load_average_at_end"] = load_averages()
        json_path, md_path = write_report(result, output, render=render_markdown)
        test = run["scores"]["test"]
        print(f"{'fold ' + str(fold) + ': ' if fold is not None else ''}C {run['C']:g}, eval {data_config.monitor} "
              f"{run['scores']['eval'][data_config.monitor]:.1f}, test "
              + ", ".join(f"{k} {v:.1f}" for k, v in test.items() if k != "examples") + f" ({run['seconds']:.0f} s)", flush=True)
    print(f"wrote {md_path} and {json_path}")
    return 0
