"""Metric functions both families use: F1, accuracy, Matthews and rank correlations, GLUE's metrics.

GLUE (BiGS fine-tuning), GLUE's own metric per task: Matthews correlation (CoLA), F1 of the positive class
and accuracy (MRPC, QQP), Pearson and Spearman correlation (STS-B), accuracy otherwise; all x 100, plus
`score`, the task's GLUE score (the mean of its two metrics where it has two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def f1(correct: int, predicted: int, gold: int) -> float:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


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
    if metric == "binary_f1":
        return ("f1", "accuracy")
    return ("accuracy",)


def score_text_task(metric: str, gold: Sequence, predicted: Sequence) -> dict:
    """Scores of a BiGS fine-tuning task: GLUE's per-task metrics, F1 and accuracy (`binary_f1`: Hyperpartisan),
    or accuracy (SCROLLS QuALITY / ContractNLI)."""
    if metric.startswith("glue_"):
        return glue_scores(metric.removeprefix("glue_"), gold, predicted)
    if metric == "binary_f1":  # F1 of class 1 (Hyperpartisan's hyperpartisan) and accuracy, x 100
        return {"f1": binary_f1(gold, predicted), "accuracy": accuracy(gold, predicted), "examples": len(gold)}
    return {"accuracy": accuracy(gold, predicted), "examples": len(gold)}
