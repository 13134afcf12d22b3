"""Where a trained intent+slot run loses exact match: an error breakdown of its best checkpoint on one split.

    python tools/fidelity_errors.py RUN_DIR [RUN_DIR ...] [--split eval] [--lang en] [--output results/fidelity_errors.md]

For every row the run gets wrong, which kind of error it is (intent only, tags only, both), and for the tag
errors what kind: a BIO-inconsistent prediction, a span with the right type and a shifted boundary, a span
of the wrong type, a missed or a spurious span. Rows are also split by whether every word occurs in the
training split. Written as one markdown section per run (with the run's commit), so results/ keeps the
evidence of results/fidelity.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections import Counter
from pathlib import Path

import torch
from omegaconf import OmegaConf

from pnlp_bench.mixer.data.base import DataConfig

from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.features import LabelSpace, featurize
from pnlp_bench.mixer.metrics import bio_consistent, spans
from pnlp_bench.mixer.pipeline import load_trained
from pnlp_bench.core.compose import options
from pnlp_bench.mixer.trainer import TrainerConfig, predict


def span_errors(gold: list[str], guess: list[str]) -> Counter:
    """Kinds of span disagreement in one row (conlleval chunks)."""
    kinds: Counter = Counter()
    gold_spans, guess_spans = spans(gold), spans(guess)
    unmatched_guess = set(guess_spans - gold_spans)
    for start, end, kind in gold_spans - guess_spans:
        overlapping = [s for s in unmatched_guess if s[0] < end and start < s[1]]
        if not overlapping:
            kinds["missed span"] += 1
        elif any(s[2] == kind for s in overlapping):
            kinds["right type, shifted boundary"] += 1
        else:
            kinds["wrong type"] += 1
        unmatched_guess -= set(overlapping)
    kinds["spurious span"] += len(unmatched_guess)
    return kinds


def analyse(run_dir: Path, split: str, lang: str) -> str:
    model, projection, _, labels = load_trained(run_dir)
    cfg = OmegaConf.create(torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["config"])
    data_config = DataConfig(**{**options(cfg.data), "languages": [lang]})
    loaded = load_data(data_config)
    data = featurize(loaded.splits, projection, data_config.max_length, LabelSpace(labels.labels, labels.tags))
    predicted = predict(model, data, split, TrainerConfig(device="cpu", precision="fp32"), torch.device("cpu"))
    train_words = {word for example in loaded.splits["train"] for word in example.words}
    rows: Counter = Counter()
    kinds: Counter = Counter()
    by_slot: Counter = Counter()
    for example, label, tags in zip(loaded.splits[split], predicted["labels"], predicted["tags"]):
        seen = "all words seen in train" if all(w in train_words for w in example.words) else "an unseen word"
        intent_ok, tags_ok = label == example.label, list(tags) == list(example.tags)
        rows[(seen, "rows")] += 1
        rows[(seen, "exact")] += intent_ok and tags_ok
        outcome = "right" if intent_ok and tags_ok else "intent only wrong" if tags_ok else "tags only wrong" if intent_ok else "both wrong"
        rows[("all", outcome)] += 1
        if not tags_ok:
            kinds["BIO-inconsistent prediction (rows)"] += not bio_consistent(list(tags))
            for kind, count in span_errors(list(example.tags), list(tags)).items():
                kinds[kind] += count
            for start, end, kind in spans(example.tags) - spans(tags):
                by_slot[kind] += 1
    total = len(loaded.splits[split])
    record = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    commit = record.get("provenance", {}).get("commit", "unknown")[:10]
    lines = [f"## {run_dir.name} ({record.get('model', '?')}, {record.get('budget', '?')}), {split} / {lang}", "",
             f"Run folder `{run_dir}`, commit {commit}, best epoch {record.get('best_epoch', '?')}; "
             f"analysed on {datetime.date.today().isoformat()} by `tools/fidelity_errors.py`.", "",
             "| rows | count | share |", "|---|---|---|"]
    for outcome in ("right", "tags only wrong", "intent only wrong", "both wrong"):
        lines.append(f"| {outcome} | {rows[('all', outcome)]} | {100 * rows[('all', outcome)] / total:.1f}% |")
    for seen in ("all words seen in train", "an unseen word"):
        count = rows[(seen, "rows")]
        lines.append(f"| rows with {seen}: exact match | {rows[(seen, 'exact')]} of {count} | "
                     f"{100 * rows[(seen, 'exact')] / max(count, 1):.1f}% |")
    lines += ["", "| tag error | count |", "|---|---|"]
    lines += [f"| {kind} | {count} |" for kind, count in kinds.most_common()]
    lines += ["", "Gold slot types most often not recovered: " +
              ", ".join(f"{kind} {count}" for kind, count in by_slot.most_common(12)), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--split", default="eval")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--output", type=Path, default=Path("results/fidelity_errors.md"))
    args = parser.parse_args(argv)
    sections = [analyse(run, args.split, args.lang) for run in args.runs]
    text = "# Error breakdown of the fidelity runs\n\n" + "\n".join(sections)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
