"""Metrics, per language and averaged over languages.

- Intent + slots (MTOP, ATIS): exact match (intent correct and every word's BIO tag correct), intent
  accuracy, and span-level slot F1 (micro, conlleval's chunking: an I- tag that does not continue a chunk
  of the same type starts a new one). Rows without gold tags count for intent accuracy only. Two other
  readings of "how well are the slots tagged", kept so results/fidelity.md can say which one the paper's
  numbers behave like: `tags_exact` (every tag right, intent ignored) and `slot_token_accuracy` (the share
  of words whose gold tag is not O that get their gold tag: what the public reimplementation reports as its
  MTOP "accuracy").
- Classification (IMDB, Hyperpartisan): accuracy, F1 of the positive class, macro F1.
- GLUE (BiGS fine-tuning), GLUE's own metric per task: Matthews correlation (CoLA), F1 of the positive class
  and accuracy (MRPC, QQP), Pearson and Spearman correlation (STS-B), accuracy otherwise; all x 100, plus
  `score`, the task's GLUE score (the mean of its two metrics where it has two).
"""

from __future__ import annotations

import math
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


def bio_consistent(tags: Sequence[str]) -> bool:
    """Whether every I-X tag continues a B-X or I-X (what Viterbi decoding guarantees and argmax may break)."""
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def f1(correct: int, predicted: int, gold: int) -> float:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


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


def accuracy(gold: Sequence, predicted: Sequence) -> float:
    return 100.0 * sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def binary_f1(gold: Sequence[int], predicted: Sequence[int], positive: int = 1) -> float:
    true_positive = sum(1 for g, p in zip(gold, predicted, strict=True) if g == positive and p == positive)
    return 100.0 * f1(true_positive, sum(p == positive for p in predicted), sum(g == positive for g in gold))


def matthews_corrcoef(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """Matthews correlation (Gorodkin's multi-class form, equal to the binary phi coefficient); 0 when undefined."""
    classes = sorted(set(gold) | set(predicted))
    index = {name: i for i, name in enumerate(classes)}
    confusion = [[0] * len(classes) for _ in classes]
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g]][index[p]] += 1
    samples = len(gold)
    correct = sum(confusion[k][k] for k in range(len(classes)))
    true_counts = [sum(row) for row in confusion]
    predicted_counts = [sum(column) for column in zip(*confusion)]
    covariance = correct * samples - sum(t * p for t, p in zip(true_counts, predicted_counts))
    spread = math.sqrt(samples**2 - sum(p * p for p in predicted_counts)) * math.sqrt(
        samples**2 - sum(t * t for t in true_counts)
    )
    return 100.0 * covariance / spread if spread else 0.0


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation x 100; 0 when either side is constant."""
    n = len(x)
    mean_x, mean_y = sum(x) / n, sum(y) / n
    covariance = sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y, strict=True))
    spread = math.sqrt(sum((a - mean_x) ** 2 for a in x) * sum((b - mean_y) ** 2 for b in y))
    return 100.0 * covariance / spread if spread else 0.0


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing the mean of the ranks they span (as Spearman's correlation needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(average_ranks(x), average_ranks(y))


GLUE_METRICS = {
    "cola": ("mcc",),
    "mrpc": ("f1", "accuracy"),
    "qqp": ("f1", "accuracy"),
    "stsb": ("pearson", "spearman"),
}


def glue_scores(task: str, gold: Sequence, predicted: Sequence) -> dict:
    """GLUE's metrics for `task` (sst2, cola, mrpc, qqp, stsb, mnli, qnli, rte, wnli) x 100, and its `score`."""
    functions = {
        "mcc": matthews_corrcoef,
        "f1": binary_f1,
        "accuracy": accuracy,
        "pearson": pearson,
        "spearman": spearman,
    }
    names = GLUE_METRICS.get(task, ("accuracy",))
    scores = {name: functions[name](gold, predicted) for name in names}
    scores["score"] = sum(scores.values()) / len(scores)
    scores["examples"] = len(gold)
    return scores


def metric_names(metric: str) -> tuple[str, ...]:
    """Names a text task's scorer returns (`glue_<task>` or `accuracy`), for checking `data.monitor` early."""
    if metric.startswith("glue_"):
        return (*GLUE_METRICS.get(metric.removeprefix("glue_"), ("accuracy",)), "score")
    return ("accuracy",)


def score_text_task(metric: str, gold: Sequence, predicted: Sequence) -> dict:
    """Scores of a BiGS fine-tuning task: GLUE's per-task metrics, or accuracy (SCROLLS QuALITY / ContractNLI)."""
    if metric.startswith("glue_"):
        return glue_scores(metric.removeprefix("glue_"), gold, predicted)
    return {"accuracy": accuracy(gold, predicted), "examples": len(gold)}
