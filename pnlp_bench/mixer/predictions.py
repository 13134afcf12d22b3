"""`predictions.jsonl`: what a pNLP-Mixer model predicted for every example of a split, one JSON line each,
written from the same pass that scores the best checkpoint (so the file costs no extra forward pass).

A line: `split`, `uid`, `language`, `words`, `label` (gold), `predicted` (the predicted label) and
`probability` (its softmax probability); intent/slot heads add `tags` (gold BIO tags per word, null for rows
without gold tags) and `predicted_tags` (one per kept word: words past max_length get none). The int8 copy
of a run (quantize.int8) writes `predictions_int8.jsonl` beside it.

The file alone gives the record's metrics back, exactly (`recompute_metrics`, with the scorer of
mixer/metrics.py): the metrics read the labels, the tags and each example's language, in the split's order,
never the words. So the words may be cut: long documents (IMDB, Hyperpartisan: up to thousands of words)
keep their first WORDS_KEPT words, with `words_total` and a `text_sha256` of the whole text to identify them;
tags are never cut (they are what slot F1 scores).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pnlp_bench.core.atomic import write_atomic
from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.metrics import scorer

PREDICTIONS = "predictions.jsonl"
PREDICTIONS_INT8 = "predictions_int8.jsonl"
# Utterances (MTOP, ATIS: at most ~60 words) are kept whole; a 25k-document IMDB split stays near 10 MB.
WORDS_KEPT = 64


def prediction_lines(split: str, examples: list[Example], predicted: dict[str, list]) -> Iterator[dict[str, Any]]:
    """One line per example of `split`, in the split's order (the order `by_language` averages in)."""
    tagged = bool(predicted.get("tags"))
    for index, example in enumerate(examples):
        line: dict[str, Any] = {
            "split": split,
            "uid": example.uid,
            "language": example.lang,
            "words": example.words[:WORDS_KEPT],
            "label": example.label,
            "predicted": predicted["labels"][index],
            "probability": predicted["probabilities"][index],
        }
        if len(example.words) > WORDS_KEPT:
            line["words_total"] = len(example.words)
            line["text_sha256"] = hashlib.sha256(" ".join(example.words).encode("utf-8")).hexdigest()
        if tagged:
            line["tags"] = example.tags
            line["predicted_tags"] = predicted["tags"][index]
        yield line


def write_predictions(path: Path, splits: Iterable[tuple[str, list[Example], dict[str, list]]]) -> None:
    """Every (split, examples, predictions) into one JSON-lines file, whole or not at all (core/atomic.py)."""

    def write(handle: IO[bytes]) -> None:
        for split, examples, predicted in splits:
            for line in prediction_lines(split, examples, predicted):
                handle.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))

    write_atomic(path, write)


def read_predictions(path: Path) -> dict[str, tuple[list[Example], dict[str, list]]]:
    """The file's splits as (examples, predictions) in the shape `predict` gives, in the file's order."""
    splits: dict[str, tuple[list[Example], dict[str, list]]] = {}
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            line = json.loads(text)
            examples, predicted = splits.setdefault(line["split"], ([], {"labels": [], "tags": [], "probabilities": []}))
            examples.append(Example(line["uid"], line["language"], line["words"], line["label"], line.get("tags")))
            predicted["labels"].append(line["predicted"])
            predicted["probabilities"].append(line["probability"])
            if "predicted_tags" in line:
                predicted["tags"].append(line["predicted_tags"])
    return splits


def recompute_metrics(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """`metrics[split][language][metric]` from a predictions file alone, with the scorer the run used (the
    head shows in the lines: intent/slot lines carry tags)."""
    metrics = {}
    for split, (examples, predicted) in read_predictions(path).items():
        head = "intent_slots" if predicted["tags"] else "classification"
        metrics[split] = scorer(head)(examples, predicted)
    return metrics
