"""Metrics, per language and averaged over languages.

- Intent + slots (MTOP, ATIS): exact match (intent correct and every word's BIO tag correct), intent
  accuracy, and span-level slot F1 (micro, conlleval's chunking: an I- tag that does not continue a chunk
  of the same type starts a new one). Rows without gold tags count for intent accuracy only.
- Classification (IMDB, Hyperpartisan): accuracy, F1 of the positive class, macro F1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pnlp_bench.data.base import Example


def spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Chunks (start, end exclusive, type) of a BIO sequence."""
    chunks = set()
    start, kind = None, None
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and kind == label and start is not None
        if start is not None and not continues:
            chunks.add((start, index, kind))
            start, kind = None, None
        if prefix == "B" or (prefix == "I" and not continues):
            start, kind = index, label
    return chunks


def f1(correct: int, predicted: int, gold: int) -> float:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def intent_slot_scores(examples: Sequence[Example], labels: Sequence[str], tags: Sequence[Sequence[str]]) -> dict:
    intent_hits = exact_hits = exact_total = 0
    correct_spans = predicted_spans = gold_spans = 0
    for example, label, predicted in zip(examples, labels, tags, strict=True):
        intent_ok = label == example.label
        intent_hits += intent_ok
        if example.tags is None:
            continue
        gold, guess = spans(example.tags), spans(predicted)
        correct_spans += len(gold & guess)
        predicted_spans += len(guess)
        gold_spans += len(gold)
        exact_total += 1
        exact_hits += intent_ok and list(predicted) == list(example.tags)
    return {
        "exact_match": 100.0 * exact_hits / exact_total if exact_total else 0.0,
        "intent_accuracy": 100.0 * intent_hits / len(examples),
        "slot_f1": 100.0 * f1(correct_spans, predicted_spans, gold_spans),
        "examples": len(examples),
    }


def classification_scores(examples: Sequence[Example], labels: Sequence[str], positive: str | None = None) -> dict:
    classes = sorted({example.label for example in examples} | set(labels))
    positive = positive if positive is not None else (classes[-1] if len(classes) == 2 else None)
    per_class = {}
    for name in classes:
        true_positive = sum(1 for e, p in zip(examples, labels) if e.label == name and p == name)
        per_class[name] = f1(true_positive, sum(p == name for p in labels), sum(e.label == name for e in examples))
    scores = {
        "accuracy": 100.0 * sum(e.label == p for e, p in zip(examples, labels, strict=True)) / len(examples),
        "macro_f1": 100.0 * sum(per_class.values()) / len(per_class),
        "examples": len(examples),
    }
    if positive is not None:
        scores["f1"] = 100.0 * per_class.get(positive, 0.0)
    return scores


def by_language(examples: Sequence[Example], score, *predictions: Sequence) -> dict[str, dict]:
    """Scores per language plus `avg`, the unweighted mean over languages (the papers' average)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        groups[example.lang].append(index)
    result = {}
    for lang, rows in sorted(groups.items()):
        result[lang] = score([examples[r] for r in rows], *[[p[r] for r in rows] for p in predictions])
    metric_names = [name for name in next(iter(result.values())) if name != "examples"]
    result["avg"] = {name: sum(result[lang][name] for lang in groups) / len(groups) for name in metric_names}
    result["avg"]["examples"] = len(examples)
    return result
