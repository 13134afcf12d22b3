"""The `bench` command: run, pretrain, table, tables, reproduce, report, speed, predict, export, eval, runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

USAGE = """usage: bench COMMAND [options] [hydra overrides…]

commands:
  run      train and evaluate one configuration (Hydra overrides; --multirun for sweeps)
           e.g. bench run model=mixer_large data=mtop data.languages=[en,de] trainer.epochs=5
           e.g. bench run backbone=bigs data=sst2 arch=stack routing=attention init=run:<hash bench pretrain printed>
  pretrain masked-LM pretraining of a BiGS model (= bench run task=mlm)
           e.g. bench pretrain model=bigs_small arch=stack routing=attention trainer.max_steps=2000
  table N  regenerate paper table N from experiments/tableN.yaml into results/ (finished cells are skipped)
           e.g. bench table 6 --budget cpu hydra/launcher=joblib;  bench table bigs_table1 --budget cpu
  tables   list every table with its budget and status (done, partial, missing data), from the committed
           records (results/records.jsonl) and the local store; --rehash re-keys finished runs after an
           upgrade changed the hash rules
  reproduce  run what the tables miss, in the paper's order (Table 6, 1-5, 7; seed 0 first; --seeds 0), within a time
           budget, in parallel; every finished cell is committed to results/ (killed, it goes on next time)
           e.g. bench reproduce --budget paper --hours 2.5;  bench reproduce --tables 6 --dry-run
  report   plots next to the tables (score vs parameters, training curves) and results/README.md
  speed    fast path against the dense reference: featurization, training, latency -> results/speed.md
           e.g. bench speed presets=[xs,base] device=cpu --quick
           bench speed length: BiGS against attention, time and peak memory per sequence length
           -> results/bigs_length.md, e.g. bench speed length profile=cpu lengths=[128,512] --quick
           bench speed projections: each Table 1 projection's training step per bottleneck path
           -> results/speed_projections.md, e.g. bench speed projections projections=[binary,tsp] --quick
  predict  a trained run's predictions for new text, one JSON line each (a run folder or a bench export folder)
           e.g. bench predict outputs/runs/mtop/mixer_base-1a2b3c4d "wake me up at seven" --top-k 3
           e.g. bench predict RUN_DIR --file utterances.txt --batch-size 256   (- reads standard input)
  export   a trained run as a Hugging Face style folder (hf), with int8 weights (int8), or as ONNX (onnx)
           e.g. bench export RUN_DIR --format hf   (-> RUN_DIR/export/hf; --out DIR elsewhere)
           e.g. bench export RUN_DIR --format int8;  bench predict RUN_DIR/export/int8 "wake me up at seven"
  eval     a finished run's best checkpoint scored on other data, no training (labels matched by name); its
           own record in RUN_DIR/eval/<hash>/ and the store, with predictions.jsonl
           e.g. bench eval outputs/runs/mtop/mixer_base-1a2b3c4d data=mtop data.languages=[de] split=test
  probe    what finished MLM pretrainings read from their context: dev loss as is, with the context shuffled,
           with only nearby words, and attention's weight on neighbours -> results/bigs_context.md
           e.g. bench probe outputs/runs/wikitext2/bigs_mini-53666060ee4d0a5b outputs/runs/wikitext2/bigs_mini-53666060ee4d0a5b@720
  copy-task  how many steps each bigs_mini encoder takes to learn to copy a neighbour (masked LM on token
           pairs), with the pretraining's optimiser -> results/bigs_copy_task.md
           e.g. bench copy-task --variants stack+attention,stack+ssm --steps 600   (overrides as bench run takes them)
  bow      a TF-IDF + logistic regression reference on a classification data set, on the splits bench run
           uses (every fold of a cross-validated one) -> results/bow_<data>.md
           e.g. bench bow data=hyperpartisan --folds 0-9;  bench bow data=imdb
  runs     the run folders under outputs/runs, newest first: data, model, overrides, status, best score, time;
           --group-by KEY,… aggregates finished runs into mean ± std over seeds
           e.g. bench runs --data mtop --group-by model,size.num_layers --metric test/avg/exact_match --json
  completion  a shell completion script: eval "$(bench completion bash)" (or zsh) in your shell's rc file
  help     this message (bench --version: the package version)

--quiet (any command) turns progress bars and summary tables off, for logs.

`bench run --help` lists the config groups and their options; `bench run --cfg job` prints the composed config.
"""


def with_pretraining_preset(arguments: list[str]) -> list[str]:
    """`task=mlm` placed among the user's overrides: Hydra's parser wants overrides in one run, not split by flags."""
    first_override = next((i for i, arg in enumerate(arguments) if "=" in arg and not arg.startswith("-")), len(arguments))
    return [*arguments[:first_override], "task=mlm", *arguments[first_override:]]


def default_output_root() -> Path:
    return Path(os.environ.get("BENCH_OUTPUT_ROOT", "outputs"))


def auto_budget(spec) -> str:
    """The paper's protocol where a GPU can run it, else the table's reduced CPU budget (labelled as such)."""
    import torch

    return "paper" if torch.cuda.is_available() or "cpu" not in spec.budgets else "cpu"


def table_command(argv: list[str]) -> int:
    from rich.console import Console

    from pnlp_bench.commands import table as tables

    parser = argparse.ArgumentParser(prog="bench table", description="Regenerate a paper table.")
    parser.add_argument("number")
    parser.add_argument("--budget", default="auto",
                        help="a budget profile of the table file (paper, cpu, …); auto: paper with a GPU, else cpu "
                             "(with --aggregate-only: the best budget with finished runs, the paper's first)")
    parser.add_argument("--aggregate-only", action="store_true", help="render from finished runs; launch nothing")
    parser.add_argument("--dry-run", action="store_true", help="print the runs it would launch; run and write nothing")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--output-root", type=Path, default=default_output_root())
    args, launcher_args = parser.parse_known_args(argv)
    flags = [arg for arg in launcher_args if arg.startswith("-")]
    if flags:  # the rest goes to Hydra as overrides; an unknown flag must not start a sweep unnoticed
        parser.error(f"unrecognized option {flags[0]!r} (the options are above; Hydra overrides are key=value)")
    if "quiet=true" in launcher_args:
        launcher_args = [arg for arg in launcher_args if arg != "quiet=true"]
        args.quiet = True
    else:
        args.quiet = False
    spec = tables.load_spec(args.number)
    console = Console()
    output_root = args.output_root.resolve()
    if args.budget == "auto" and args.aggregate_only:
        best = tables.best_budget(spec, output_root, args.results_dir)
        if best is None:
            console.print(f"table {spec.number}: no finished run in {store_path_text(args)}; "
                          f"{args.results_dir / spec.stem}.* left as they are")
            return 1
        args.budget = best
        console.print(f"table {spec.number}: budget {best} (the best budget with finished runs; --budget chooses)")
    elif args.budget == "auto":
        args.budget = auto_budget(spec)
        console.print(f"table {spec.number}: budget {args.budget} (auto: {'a GPU is' if args.budget == 'paper' else 'no GPU'} "
                      "here; --budget paper|cpu chooses)")
    if args.dry_run:
        lines = tables.dry_run_lines(spec, args.budget, output_root, args.results_dir)
        console.print(f"table {spec.number}: {len(lines)} runs to launch at budget {args.budget!r}", highlight=False)
        for line in lines:
            # markup=False: an override such as data.languages=[es] is not a rich style tag
            console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)
        return 0
    failures = 0
    if not args.aggregate_only:
        absent = tables.missing_data(spec)
        if absent:
            console.print(f"[yellow]table {spec.number}: data not found ({', '.join(absent)}); runs may fail[/]")
        failures = tables.launch(
            spec, args.budget, output_root, [*launcher_args, *(["quiet=true"] if args.quiet else [])], args.results_dir
        )
    # the local store's records of the table's runs join the committed ones (a fresh clone has none to add)
    added = tables.commit_records(spec, args.budget, output_root, args.results_dir)
    if added:
        console.print(f"table {spec.number}: {added} record(s) added to {args.results_dir / 'records.jsonl'}")
    cells = tables.aggregate(spec, args.budget, output_root, args.results_dir)
    for path in tables.write_results(spec, args.budget, cells, args.results_dir, output_root):
        console.print(f"wrote {path}")
    chosen = {row.name for row in spec.rows_for(args.budget)}  # rows a budget leaves out are not missing
    missing = [cell for cell in cells if cell["ours_mean"] is None and cell["row"] in chosen]
    if failures or missing:
        console.print(f"[yellow]{failures} row sweeps failed; {len(missing)} cells without a result[/]")
        return 1
    return 0


def store_path_text(args: argparse.Namespace) -> str:
    from pnlp_bench.core import store

    return f"{store.committed_path(args.results_dir)} or {store.store_path(args.output_root)}"


def tables_command(argv: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from pnlp_bench.commands import table as tables

    parser = argparse.ArgumentParser(prog="bench tables")
    parser.add_argument("--budget", default="auto",
                        help="paper, cpu, …; auto: each table's best budget with finished runs (the paper's first)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--output-root", type=Path, default=default_output_root())
    parser.add_argument("--rehash", action="store_true",
                        help="after an upgrade that changed which keys a cell's hash covers, re-key finished runs")
    args = parser.parse_args(argv)
    specs = [tables.load_spec(tables.table_name(path)) for path in tables.spec_files()]
    if args.budget != "auto" and not any(args.budget in spec.budgets for spec in specs):
        known = sorted({budget for spec in specs for budget in spec.budgets})
        from pnlp_bench.core.registry import ConfigError

        raise ConfigError(f"bench tables --budget {args.budget!r}: no table has that budget; valid: auto, {', '.join(known)}")
    if args.rehash:
        from pnlp_bench.core import store

        print(f"re-keyed {store.rehash(args.output_root.resolve())} finished run(s) in {args.output_root}")
    output_root = args.output_root.resolve()
    listing = Table(title=f"tables ({store_path_text(args)})")
    for column in ("table", "title", "budget", "status"):
        listing.add_column(column)
    for spec in specs:
        if args.budget == "auto":
            budget = tables.best_budget(spec, output_root, args.results_dir) or auto_budget(spec)
            budget = budget if budget in spec.budgets else next(iter(spec.budgets))
        elif args.budget not in spec.budgets:  # another table has it: say so here rather than show another budget
            listing.add_row(spec.number, spec.title, args.budget, f"no {args.budget!r} budget ({', '.join(spec.budgets)})")
            continue
        else:
            budget = args.budget
        status = tables.status(spec, budget, output_root, args.results_dir)
        if args.budget == "auto" and budget != "paper" and "paper" in spec.budgets:
            # a table shown at a reduced budget also says how far its paper-protocol cells are
            done, needed = tables.coverage(spec, "paper", output_root, args.results_dir)
            status += f" · paper: {done}/{needed} runs"
        listing.add_row(spec.number, spec.title, budget, status)
    Console().print(listing)
    return 0


def report_command(argv: list[str]) -> int:
    from pnlp_bench.commands.report import report

    parser = argparse.ArgumentParser(prog="bench report")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--output-root", type=Path, default=default_output_root())
    args = parser.parse_args(argv)
    print(f"wrote {report(args.results_dir, args.output_root)}")
    return 0


def speed_command(argv: list[str]) -> int:
    if argv[:1] == ["length"]:  # a subcommand: `bench speed` itself takes only key=value overrides
        from pnlp_bench.commands.speed.length import main as length_main

        return length_main(argv[1:])
    if argv[:1] == ["projections"]:
        from pnlp_bench.commands.speed.projections import main as projections_main

        return projections_main(argv[1:])
    from pnlp_bench.commands.speed.bench import main as speed_main

    return speed_main(argv)


def reproduce_command(argv: list[str]) -> int:
    from pnlp_bench.commands.reproduce import main as reproduce_main

    return reproduce_main(argv)


def predict_command(argv: list[str]) -> int:
    from pnlp_bench.commands.predict import main as predict_main

    return predict_main([arg for arg in argv if arg != "quiet=true"])


def eval_command(argv: list[str]) -> int:
    from pnlp_bench.commands.eval import main as eval_main

    return eval_main(argv)


def probe_command(argv: list[str]) -> int:
    from pnlp_bench.commands.mlm_probe import main as probe_main

    return probe_main([arg for arg in argv if arg != "quiet=true"])


def bow_command(argv: list[str]) -> int:
    from pnlp_bench.commands.bow import main as bow_main

    return bow_main([arg for arg in argv if arg != "quiet=true"])


def copy_task_command(argv: list[str]) -> int:
    from pnlp_bench.commands.copy_task import main as copy_task_main

    return copy_task_main([arg for arg in argv if arg != "quiet=true"])


def runs_command(argv: list[str]) -> int:
    from pnlp_bench.commands.runs import main as runs_main

    return runs_main([arg for arg in argv if arg != "quiet=true"])


def export_command(argv: list[str]) -> int:
    from pnlp_bench.commands.export import main as export_main

    return export_main([arg for arg in argv if arg != "quiet=true"])


def completion_command(argv: list[str]) -> int:
    from pnlp_bench.commands.completion import main as completion_main

    return completion_main(argv)


def complete_command(argv: list[str]) -> int:
    """What the completion script calls at each <TAB> (`bench __complete CWORD WORDS…`)."""
    from pnlp_bench.commands.completion import complete

    names = ["run", "pretrain", *(name for name in COMMANDS if not name.startswith("_")), "help"]
    return complete(argv, names, main)


def version_text() -> str:
    import platform

    from pnlp_bench import __version__

    return f"pnlp-bench {__version__} (Python {platform.python_version()})"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"help", "-h", "--help"}:
        print(USAGE)
        return
    if argv[0] in {"--version", "-V", "version"}:
        print(version_text())
        return
    command, rest = argv[0], argv[1:]
    if "--quiet" in rest:  # logs only: no progress bars or tables, for batch jobs and CI
        rest = [arg for arg in rest if arg != "--quiet"] + ["quiet=true"]
    if command in {"run", "pretrain"}:
        from pnlp_bench.commands.config_check import failed_sweep_jobs
        from pnlp_bench.commands.run import main as run_main

        # pretraining is a preset of `bench run` (conf/task/mlm.yaml); the command line still wins
        sys.argv = ["bench run", *rest] if command == "run" else ["bench pretrain", *with_pretraining_preset(rest)]
        try:
            run_main()
        finally:  # Hydra ends a sweep with a failed job by SystemExit(1); the summary names every one
            failed = failed_sweep_jobs()
            if failed:
                print(f"bench: {len(failed)} job(s) of the sweep failed; see metrics.json in:\n  " + "\n  ".join(failed),
                      file=sys.stderr)
        if failed:
            raise SystemExit(1)
        return
    if command not in COMMANDS:
        print(f"bench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    from pnlp_bench.core.errors import OneLineError
    from pnlp_bench.core.registry import ConfigError

    try:
        raise SystemExit(COMMANDS[command](rest))
    except (ConfigError, OneLineError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


# `bench COMMAND`: run and pretrain go to Hydra (main), these take argparse flags
COMMANDS = {"table": table_command, "tables": tables_command, "reproduce": reproduce_command, "report": report_command,
            "speed": speed_command, "predict": predict_command, "export": export_command, "eval": eval_command,
            "runs": runs_command, "probe": probe_command, "copy-task": copy_task_command, "bow": bow_command, "completion": completion_command,
            "__complete": complete_command}

if __name__ == "__main__":
    main()
