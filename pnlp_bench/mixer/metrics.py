"""Metrics, per language and averaged over languages.

- Intent + slots (MTOP, ATIS): exact match (intent correct and every word's BIO tag correct), intent
  accuracy, and span-level slot F1 (micro, conlleval's chunking: an I- tag that does not continue a chunk
  of the same type starts a new one). Rows without gold tags count for intent accuracy only. Two other
  readings of "how well are the slots tagged", kept so results/fidelity.md can say which one the paper's
  numbers behave like: `tags_exact` (every tag right, intent ignored) and `slot_token_accuracy` (the share
  of words whose gold tag is not O that get their gold tag: what the public reimplementation reports as its
  MTOP "accuracy").
- Classification (IMDB, Hyperpartisan): accuracy, F1 of the positive class, macro F1.
The generic functions (F1, accuracy, correlations, GLUE's metrics) are in `pnlp_bench/core/metrics.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pnlp_bench.core.metrics import f1
from pnlp_bench.mixer.data.base import Example


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


def bio_consistent(tags: Sequence[str]) -> bool:
    """Whether every I-X tag continues a B-X or I-X (what Viterbi decoding guarantees and argmax may break)."""
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def intent_slot_scores(examples: Sequence[Example], labels: Sequence[str], tags: Sequence[Sequence[str]]) -> dict:
    intent_hits = exact_hits = exact_total = tags_hits = 0
    correct_spans = predicted_spans = gold_spans = 0
    slot_tokens = slot_tokens_right = 0
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
        tags_ok = list(predicted) == list(example.tags)
        exact_hits += intent_ok and tags_ok
        tags_hits += tags_ok
        for gold_tag, guess_tag in zip(example.tags, predicted):
            if gold_tag != "O":
                slot_tokens += 1
                slot_tokens_right += gold_tag == guess_tag
    return {
        "exact_match": 100.0 * exact_hits / exact_total if exact_total else 0.0,
        "intent_accuracy": 100.0 * intent_hits / len(examples),
        "slot_f1": 100.0 * f1(correct_spans, predicted_spans, gold_spans),
        "tags_exact": 100.0 * tags_hits / exact_total if exact_total else 0.0,
        "slot_token_accuracy": 100.0 * slot_tokens_right / slot_tokens if slot_tokens else 0.0,
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




def scorer(head: str):
    """The metrics of a head's predictions (`predict`'s labels, and tags for intent_slots), by language."""
    if head == "intent_slots":
        return lambda examples, predicted: by_language(examples, intent_slot_scores, predicted["labels"], predicted["tags"])
    return lambda examples, predicted: by_language(examples, classification_scores, predicted["labels"])
