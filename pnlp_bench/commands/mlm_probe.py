"""`bench probe RUN_DIR[@STEP] ... [--output results/bigs_context] [--blocks N] [--window 2]`: what finished
masked-LM pretrainings read from their context (pnlp_bench/bigs/diagnostics.py).

Each RUN_DIR is a pretraining's run folder (`outputs/runs/wikitext2/<model>-<hash>`); `@STEP` takes its
snapshot at that step (trainer.snapshot_steps) instead of its final weights (last.pt, whose dev loss the
record reports). The dev blocks, masking and evaluation batch are the run's own, so the ``as_is`` loss
equals the recorded one (checked: a mismatch is an error, not a row). Writes ``<output>.json`` and
``<output>.md`` with the commit and hardware.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from pnlp_bench.bigs.data.loaders import load_text_data
from pnlp_bench.bigs.diagnostics import adjacent_attention, context_use
from pnlp_bench.bigs.model import BiGSConfig, BiGSForMaskedLM
from pnlp_bench.bigs.pipeline import parse_configs
from pnlp_bench.bigs.pretrain import DEV_MASK_SEED, build_blocks, dev_batch_size, snapshot_path
from pnlp_bench.bigs.tokenization import vocabulary
from pnlp_bench.commands.speed.harness import hardware, load_averages, provenance_lines, write_report
from pnlp_bench.core.checkpoint import load_checkpoint
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.paths import BERT_UNCASED_VOCAB
from pnlp_bench.core.provenance import provenance

LABELS = {("gated", "ssm"): "GATED+SSM (BiGS)", ("stack", "attention"): "STACK+attention (BERT)",
          ("stack", "ssm"): "STACK+SSM", ("gated", "attention"): "GATED+attention"}


def label(config: BiGSConfig) -> str:
    """The variant's name in bigs_table1, with what the attention-init keys change (bigs_positions' names)."""
    name = LABELS.get((config.arch, config.routing), f"{config.arch}+{config.routing}")
    if config.routing == "attention" and config.relative_attention_buckets is not None:
        start = "local" if config.relative_attention_init_slope else "zero"
        name = f"{name.removesuffix(' (BERT)')}, relative bias ({start} start)"
    return name


def split_target(target: str) -> tuple[Path, int | None]:
    """'folder' or 'folder@step'."""
    folder, _, step = target.partition("@")
    if step and not step.isdigit():
        raise OneLineError(f"{target}: the part after @ must be a step number (trainer.snapshot_steps)")
    return Path(folder), int(step) if step else None


def probe_run(target: str, blocks_limit: int | None, window: int) -> dict[str, Any]:
    run_dir, step = split_target(target)
    config_path, record_path = run_dir / "config.yaml", run_dir / "metrics.json"
    for path in (config_path, record_path):
        if not path.is_file():
            raise OneLineError(f"{path}: not found; give the run folder of a finished `bench run task=mlm` pretraining")
    try:
        record = json.loads(record_path.read_text())
    except ValueError as error:
        raise OneLineError(f"{record_path}: not readable JSON ({error})") from None
    if record.get("task") != "mlm" or record.get("status") != "finished":
        raise OneLineError(f"{record_path}: not a finished masked-LM pretraining (task {record.get('task')!r}, status {record.get('status')!r})")
    resolved = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
    data_config, _, trainer_config = parse_configs(resolved)  # type: ignore[arg-type]
    weights = snapshot_path(run_dir, step) if step is not None else run_dir / "last.pt"
    if not weights.is_file():
        raise OneLineError(f"{weights}: not found (the weights are not committed; run the pretraining again)")
    saved = load_checkpoint(weights, "run the pretraining again")
    known = {f.name for f in fields(BiGSConfig)}
    config = BiGSConfig(**{key: value for key, value in saved["bigs_config"].items() if key in known})
    model = BiGSForMaskedLM(config)
    model.load_state_dict(saved["model"])
    vocab = vocabulary(str(BERT_UNCASED_VOCAB))
    task = load_text_data(data_config)
    dev, _ = build_blocks(task.splits["eval"], data_config.max_length, vocab, str(BERT_UNCASED_VOCAB))
    if blocks_limit:
        dev = dev[:blocks_limit]
    batch = dev_batch_size(trainer_config, data_config.max_length)
    started = time.perf_counter()
    losses = context_use(model, dev, vocab, trainer_config.mlm_probability, trainer_config.max_predictions,
                         DEV_MASK_SEED, batch, window=window)
    adjacency = adjacent_attention(model, dev[:batch])
    recorded = (next(s["mlm_loss"] for s in record.get("snapshots", []) if s["step"] == step) if step is not None
                else record["metrics"]["eval"]["avg"]["mlm_loss"])
    if not blocks_limit and abs(losses["as_is"] - recorded) > 2e-3:
        raise OneLineError(f"{weights}: dev MLM loss {losses['as_is']:.4f} here against {recorded:.4f} recorded; "
                           "the probe does not see what the run saw")
    return {
        "run": str(run_dir), "config_hash": record["config_hash"], "snapshot": step is not None,
        "step": step if step is not None else int(record["steps"]),
        "tokens_seen": int(saved["tokens_seen"] if step is not None else record["tokens_seen"]),
        "label": label(config),
        "lr": trainer_config.lr, "recorded_mlm_loss": recorded, **losses, "adjacent_attention": adjacency,
        "dev_blocks": int(dev.shape[0]), "seconds": round(time.perf_counter() - started, 1),
    }


def _loss(value: float) -> str:
    return f"{value:.3f} ({math.exp(value):.1f})"


def render_markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    window = rows[0]["window_size"] if rows else 2
    lines = [
        "# What the pretrained encoders read from their context (`bench probe`)",
        "",
        f"Command: `{result['command']}`.",
        *provenance_lines(result["provenance"], result["hardware"], "no GPU."),
        "",
        "Dev MLM loss (perplexity) of each pretraining on the dev positions its own evaluation masks "
        "(pnlp_bench/bigs/diagnostics.py): **as is**; with the unmasked context words of each block "
        "**shuffled** among their positions (the same bag of words, no order); and with only the context words "
        f"within **±{window}** positions of a target kept (the rest [MASK]). 'order used' = shuffled - as is: "
        "0 means the encoder reads its context as a bag of words. 'adjacent attention' = the mean attention "
        "weight on the two neighbouring tokens as a multiple of uniform (1.0: attention ignores adjacency; "
        "attention routings only).",
        "",
        "| pretraining | lr | tokens | as is | shuffled context | order used | only ±%d words | adjacent attention |" % window,
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        adjacency = "—" if row["adjacent_attention"] is None else f"{row['adjacent_attention']:.2f}x"
        lines.append(
            f"| {row['label']} ({row['config_hash']}{'@' + str(row['step']) if row['snapshot'] else ''}) "
            f"| {row['lr']:g} | {row['tokens_seen'] / 1e6:.1f}M | {_loss(row['as_is'])} | {_loss(row['context_shuffled'])} "
            f"| {row['context_shuffled'] - row['as_is']:+.3f} | {_loss(row['window'])} | {adjacency} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="pretraining run folders, each optionally @STEP for a snapshot")
    parser.add_argument("--output", default="results/bigs_context", help="writes <output>.json and <output>.md")
    parser.add_argument("--blocks", type=int, default=None, help="only the first N dev blocks (a quick look; no check against the record)")
    parser.add_argument("--window", type=int, default=2, help="context words kept on each side of a target")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(list(argv))
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    result: dict[str, Any] = {"command": " ".join(["bench probe", *argv]), "provenance": provenance(device),
                              "hardware": hardware(device), "rows": []}
    for target in args.runs:
        row = probe_run(target, args.blocks, args.window)
        print(f"{row['label']} {row['tokens_seen'] / 1e6:.1f}M tokens: as is {row['as_is']:.3f}, shuffled "
              f"{row['context_shuffled']:.3f}, window {row['window']:.3f}", flush=True)
        result["rows"].append(row)
    result["hardware"]["load_average_at_end"] = load_averages()
    json_path, md_path = write_report(result, args.output, render=render_markdown)
    print(f"wrote {md_path} and {json_path}")
    return 0
