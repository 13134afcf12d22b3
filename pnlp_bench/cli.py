"""The `bench` command: `bench run [overrides…]`, `bench pretrain [overrides…]` (more arrive with the tables and speed work)."""

from __future__ import annotations

import sys

USAGE = """usage: bench COMMAND [hydra overrides…]

commands:
  run       train and evaluate one configuration (Hydra overrides; --multirun for sweeps)
            e.g. bench run model=mixer_large data=mtop data.languages=[en,de] trainer.epochs=5
            e.g. bench run backbone=bigs data=sst2 arch=stack routing=attention init=outputs/runs/wikitext2/<run>
  pretrain  masked-LM pretraining of a BiGS model (= bench run task=mlm)
            e.g. bench pretrain model=bigs_small arch=stack routing=attention trainer.max_steps=2000
  help      this message

`bench run --help` lists the config groups and their options; `bench run --cfg job` prints the composed config.
"""


def with_pretraining_preset(arguments: list[str]) -> list[str]:
    """`task=mlm` placed among the user's overrides: Hydra's parser wants overrides in one run, not split by flags."""
    first_override = next((i for i, arg in enumerate(arguments) if "=" in arg and not arg.startswith("-")), len(arguments))
    return [*arguments[:first_override], "task=mlm", *arguments[first_override:]]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"help", "-h", "--help"}:
        print(USAGE)
        return
    command, rest = argv[0], argv[1:]
    if command in {"run", "pretrain"}:
        from pnlp_bench.run import main as run_main

        # pretraining is a preset of `bench run` (conf/task/mlm.yaml); the command line still wins
        sys.argv = ["bench run", *rest] if command == "run" else ["bench pretrain", *with_pretraining_preset(rest)]
        run_main()
        return
    print(f"bench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
