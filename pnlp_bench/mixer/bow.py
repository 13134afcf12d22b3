"""A bag-of-words reference for the classification data sets (IMDB, Hyperpartisan): TF-IDF unigrams and an
L2-regularised logistic regression, the classic linear text classifier.

It answers a fidelity question the mixer alone cannot: how much of a gap to the paper is the data and its split,
and how much the model. Same loader, same splits, same metric (`classification_scores`), same selection rule as a
`bench run` (the best of a small grid of regularisation strengths by the eval split's `monitor`, then the test
split read once with it).

Features: the loader's words lower-cased; a word counts once it is in at least `min_df` training documents;
weight (1 + log tf) x (1 + log(N / df)) on the training split's N and df; each document's vector scaled to unit
length. Model: softmax regression over the labels (two logits for a binary set), cross-entropy + ||W||^2 / (2 C N),
fitted full-batch with L-BFGS (strong Wolfe line search) from zero, so a fit is deterministic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.metrics import classification_scores


@dataclass
class Vocabulary:
    index: dict[str, int]
    idf: torch.Tensor  # [V]


def build_vocabulary(train: Sequence[Example], min_df: int = 2) -> Vocabulary:
    if min_df < 1:
        raise ValueError(f"min_df must be >= 1, got {min_df}")
    df = Counter(word for example in train for word in {w.lower() for w in example.words})
    kept = sorted(word for word, count in df.items() if count >= min_df)
    index = {word: i for i, word in enumerate(kept)}
    idf = torch.tensor([1.0 + math.log(len(train) / df[word]) for word in kept], dtype=torch.float64)
    return Vocabulary(index, idf.float())


def features(examples: Sequence[Example], vocabulary: Vocabulary) -> torch.Tensor:
    """[N, V] sparse (COO, coalesced) TF-IDF rows of unit length; a document with no known word is all zeros."""
    rows, columns, values = [], [], []
    for row, example in enumerate(examples):
        counts = Counter(vocabulary.index[w] for w in (word.lower() for word in example.words) if w in vocabulary.index)
        if not counts:
            continue
        weights = {j: (1.0 + math.log(tf)) * float(vocabulary.idf[j]) for j, tf in counts.items()}
        norm = math.sqrt(sum(v * v for v in weights.values()))
        for j, value in weights.items():
            rows.append(row)
            columns.append(j)
            values.append(value / norm)
    indices = torch.tensor([rows, columns], dtype=torch.long).reshape(2, -1)
    return torch.sparse_coo_tensor(indices, torch.tensor(values, dtype=torch.float32),
                                   (len(examples), len(vocabulary.index)), check_invariants=True).coalesce()


@dataclass
class LogisticRegression:
    weight: torch.Tensor  # [V, K]
    bias: torch.Tensor  # [K]
    labels: list[str]
    C: float
    final_loss: float

    def predict(self, x: torch.Tensor) -> list[str]:
        with torch.no_grad():
            logits = torch.sparse.mm(x, self.weight) + self.bias
        return [self.labels[i] for i in logits.argmax(dim=1).tolist()]


def fit(x: torch.Tensor, labels: Sequence[str], classes: Sequence[str], C: float, max_iter: int = 300) -> LogisticRegression:
    if C <= 0:
        raise ValueError(f"C must be > 0, got {C}")
    position = {label: i for i, label in enumerate(classes)}
    target = torch.tensor([position[label] for label in labels])
    weight = torch.zeros(x.shape[1], len(classes), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9, history_size=20)
    count = x.shape[0]

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(torch.sparse.mm(x, weight) + bias, target) + (weight * weight).sum() / (2 * C * count)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    return LogisticRegression(weight.detach(), bias.detach(), list(classes), C, float(loss.detach()))


def evaluate(splits: dict[str, list[Example]], grid: Sequence[float], monitor: str, min_df: int = 2) -> dict:
    """Fit one model per C on train, keep the best by the eval split's `monitor`, score it on eval and test."""
    train = splits["train"]
    vocabulary = build_vocabulary(train, min_df)
    classes = sorted({example.label for split in splits.values() for example in split})
    x = {name: features(split, vocabulary) for name, split in splits.items() if split}
    tried = []
    best = None
    for C in grid:
        model = fit(x["train"], [e.label for e in train], classes, C)
        scores = {name: classification_scores(splits[name], model.predict(x[name])) for name in x}
        if monitor not in scores["eval"]:
            raise ValueError(f"monitor {monitor!r} is not a score of this data set ({', '.join(scores['eval'])})")
        tried.append({"C": C, "eval": scores["eval"][monitor], "train": scores["train"][monitor], "loss": model.final_loss})
        if best is None or scores["eval"][monitor] > best["scores"]["eval"][monitor]:  # ties keep the smaller C
            best = {"C": C, "scores": scores}
    return {"vocabulary": len(vocabulary.index), "classes": classes, "examples": {k: len(v) for k, v in splits.items()},
            "C": best["C"], "scores": best["scores"], "grid": tried}
