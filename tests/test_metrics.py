import pytest

from pnlp_bench.data.base import Example
from pnlp_bench.metrics import by_language, classification_scores, intent_slot_scores, spans


def test_spans_follow_conlleval_chunking():
    assert spans(["B-A", "I-A", "O", "B-B"]) == {(0, 2, "A"), (3, 4, "B")}
    assert spans(["I-A", "I-A", "I-B"]) == {(0, 2, "A"), (2, 3, "B")}
    assert spans(["B-A", "B-A"]) == {(0, 1, "A"), (1, 2, "A")}
    assert spans(["O", "O"]) == set()


def test_exact_match_needs_intent_and_every_tag():
    gold = [
        Example("1", "en", ["a", "b"], "IN:X", ["B-S", "I-S"]),
        Example("2", "en", ["a", "b"], "IN:Y", ["O", "B-T"]),
        Example("3", "en", ["a", "b"], "IN:Y", ["O", "O"]),
        Example("4", "en", ["a"], "IN:Z", None),  # no trustworthy tags: intent accuracy only
    ]
    labels = ["IN:X", "IN:X", "IN:Y", "IN:Z"]
    tags = [["B-S", "I-S"], ["O", "B-T"], ["O", "B-T"], ["O"]]
    scores = intent_slot_scores(gold, labels, tags)
    assert scores["exact_match"] == pytest.approx(100 / 3)  # only row 1: row 2 has the wrong intent
    assert scores["intent_accuracy"] == pytest.approx(75.0)
    # spans: gold {S, T}; predicted {S, T, T}; correct 2 -> P 2/3, R 1 -> F1 0.8
    assert scores["slot_f1"] == pytest.approx(80.0)


def test_classification_scores():
    gold = [Example(str(i), "en", ["x"], label) for i, label in enumerate(["pos", "pos", "neg", "neg"])]
    scores = classification_scores(gold, ["pos", "neg", "neg", "neg"], positive="pos")
    assert scores["accuracy"] == 75.0
    assert scores["f1"] == pytest.approx(100 * 2 * 1 * 0.5 / 1.5)


def test_average_is_unweighted_over_languages():
    gold = [Example("1", "en", ["x"], "a", ["O"]), Example("2", "de", ["x"], "a", ["O"]), Example("3", "de", ["x"], "a", ["O"])]
    result = by_language(gold, intent_slot_scores, ["a", "b", "b"], [["O"], ["O"], ["O"]])
    assert result["en"]["intent_accuracy"] == 100.0
    assert result["de"]["intent_accuracy"] == 0.0
    assert result["avg"]["intent_accuracy"] == 50.0
