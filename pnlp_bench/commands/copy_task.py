"""`bench copy-task [OVERRIDES...] [--variants gated+ssm,stack+attention,...] [--steps N] [--eval-every K]
[--stop-at F] [--output results/bigs_copy_task]`: how many steps of the pretraining's optimiser each encoder
takes to learn to copy a neighbour (pnlp_bench/bigs/copy_task.py).

Each variant is `bench run task=mlm model=bigs_mini trainer=mlm_cpu arch=A routing=R` plus OVERRIDES (for
example trainer.lr=3e-3 or backbone.initializer_range=0.05), composed as `bench run` would, so the encoder,
its parameter count, the optimiser, masking and precision are those of the bigs_table1 pretraining. Writes
``<output>.json`` and ``<output>.md`` with the commit and hardware; prints a line per evaluation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import OmegaConf

from pnlp_bench.bigs.copy_task import COPY_TOKENS, copy_task_curve
from pnlp_bench.bigs.model import BiGSForMaskedLM
from pnlp_bench.bigs.pipeline import parameter_counts, parse_configs
from pnlp_bench.bigs.tokenization import vocabulary
from pnlp_bench.commands.mlm_probe import LABELS
from pnlp_bench.commands.speed.harness import hardware, load_averages, provenance_lines, write_report
from pnlp_bench.core.compose import compose
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.paths import BERT_UNCASED_VOCAB
from pnlp_bench.core.provenance import provenance

BASE = ["task=mlm", "model=bigs_mini", "trainer=mlm_cpu"]
VARIANTS = ("gated+ssm", "stack+attention", "stack+ssm", "gated+attention")


def parse_variants(text: str) -> list[tuple[str, str]]:
    chosen = []
    for item in text.split(","):
        if item.strip() not in VARIANTS:
            raise OneLineError(f"--variants: {item.strip()!r} is not one of {', '.join(VARIANTS)}")
        arch, routing = item.strip().split("+")
        chosen.append((arch, routing))
    return chosen


def run_variant(arch: str, routing: str, overrides: list[str], args: argparse.Namespace) -> dict[str, Any]:
    composed = [*BASE, *overrides, f"arch={arch}", f"routing={routing}"]
    resolved = OmegaConf.to_container(compose(composed), resolve=True)
    _, backbone_config, trainer_config = parse_configs(resolved)  # type: ignore[arg-type]
    if args.batch_size:
        trainer_config.batch_size = args.batch_size
    vocab = vocabulary(str(BERT_UNCASED_VOCAB))
    torch.manual_seed(args.seed)
    model = BiGSForMaskedLM(backbone_config.bigs_config(vocab_size=vocab.size))
    label = LABELS[(arch, routing)]

    def report(point: dict[str, Any]) -> None:
        print(f"{label} step {point['step']}: loss {point['loss']:.3f}, accuracy {point['accuracy']:.3f} "
              f"({point['seconds']:.0f} s)", flush=True)

    result = copy_task_curve(model, vocab, trainer_config, args.steps, args.eval_every, args.seed,
                             length=args.length, stop_at=args.stop_at, on_eval=report)
    return {"label": label, "arch": arch, "routing": routing, "overrides": composed, "encoder_parameters": parameter_counts(model)["encoder"],
            "num_layers": backbone_config.num_layers, "lr": trainer_config.lr, "batch_size": trainer_config.batch_size,
            "precision": trainer_config.precision, "initializer_range": backbone_config.initializer_range, **result}


def render_markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        "# How fast each encoder learns to read its neighbours (`bench copy-task`)",
        "",
        f"Command: `{result['command']}`.",
        *provenance_lines(result["provenance"], result["hardware"], "no GPU."),
        "",
        f"Masked LM on blocks of {result['length']} tokens made of pairs (`a1 a1 a2 a2 ...`, a's uniform over "
        f"{COPY_TOKENS[1] - COPY_TOKENS[0]:,} word pieces): a masked token is exactly its neighbour "
        "(pnlp_bench/bigs/copy_task.py). The pretraining's own masking, optimiser, warm-up, clipping and precision "
        "(`trainer=mlm_cpu`), its learning rate held after the warm-up; accuracy on fixed held-out batches. "
        "'reads no context' is the accuracy of an encoder that only trusts the token a position shows; 'ceiling' the "
        "share of targets whose partner is visible. 'half-way' is the first evaluation step whose accuracy passes "
        "half the ceiling.",
        "",
        "| encoder | layers | encoder params | lr | batch | half-way at step | last step | accuracy there | loss there |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        last = row["curve"][-1]
        half = "not reached" if row["half_ceiling_step"] is None else f"{row['half_ceiling_step']:,}"
        lines.append(
            f"| {row['label']} | {row['num_layers']} | {row['encoder_parameters']:,} | {row['lr']:g} | {row['batch_size']} "
            f"| {half} | {last['step']:,}{' (stopped: solved)' if row['stopped_early'] else ''} "
            f"| {last['accuracy']:.3f} | {last['loss']:.3f} |"
        )
    if rows:
        lines += ["", f"Reference levels: reads no context {rows[0]['shown_level']:.3f}, ceiling {rows[0]['ceiling']:.3f}; "
                  f"loss of a uniform guess over the pair tokens {rows[0]['no_context_loss']:.3f}.", "",
                  "Accuracy at each evaluation:", "",
                  "| step | " + " | ".join(row["label"] for row in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        steps = sorted({point["step"] for row in rows for point in row["curve"]})
        for step in steps:
            cells = []
            for row in rows:
                point = next((p for p in row["curve"] if p["step"] == step), None)
                cells.append("" if point is None else f"{point['accuracy']:.3f}")
            lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench copy-task", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides for every variant (as bench run takes them)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--stop-at", type=float, default=0.9, help="stop a variant once its accuracy reaches this share of the ceiling")
    parser.add_argument("--batch-size", type=int, default=None, help="blocks per step (default: the trainer's)")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="results/bigs_copy_task", help="writes <output>.json and <output>.md")
    args = parser.parse_args(list(argv))
    for name in ("steps", "eval_every", "length", "threads"):
        if getattr(args, name) < 1:
            raise OneLineError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.length % 2:
        raise OneLineError(f"--length must be even (the blocks are pairs), got {args.length}")
    variants = parse_variants(args.variants)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    result: dict[str, Any] = {"command": " ".join(["bench copy-task", *argv]), "provenance": provenance(device),
                              "hardware": hardware(device), "length": args.length, "seed": args.seed, "rows": []}
    for arch, routing in variants:  # the report is rewritten after each variant, so an interrupted run keeps its rows
        result["rows"].append(run_variant(arch, routing, list(args.overrides), args))
        result["hardware"]["load_average_at_end"] = load_averages()
        json_path, md_path = write_report(result, args.output, render=render_markdown)
        print(f"wrote {md_path} and {json_path}", flush=True)
    return 0
