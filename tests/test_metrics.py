import pytest

from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.metrics import by_language, classification_scores, intent_slot_scores, spans


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
    # tags alone: rows 1 and 2 right, row 3 not; gold non-O words: S, S, T -> all three tagged right
    assert scores["tags_exact"] == pytest.approx(200 / 3)
    assert scores["slot_token_accuracy"] == pytest.approx(100.0)
    missed = intent_slot_scores(gold[:1], ["IN:X"], [["B-S", "O"]])
    assert missed["slot_token_accuracy"] == pytest.approx(50.0) and missed["tags_exact"] == 0.0


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


# GLUE metrics (BiGS fine-tuning), on cases worked out by hand


def test_matthews_correlation_by_hand():
    from pnlp_bench.core.metrics import matthews_corrcoef

    gold = [1, 1, 1, 0, 0, 0]
    # TP 2, FN 1, TN 2, FP 1: (2*2 - 1*1) / sqrt(3 * 3 * 3 * 3) = 3 / 9
    assert matthews_corrcoef(gold, [1, 1, 0, 0, 0, 1]) == pytest.approx(100 / 3)
    assert matthews_corrcoef(gold, gold) == pytest.approx(100.0)
    assert matthews_corrcoef(gold, [1 - g for g in gold]) == pytest.approx(-100.0)
    assert matthews_corrcoef(gold, [1] * 6) == 0.0  # undefined (one predicted class): 0, as GLUE's scorer


def test_pearson_and_spearman_by_hand():
    from pnlp_bench.core.metrics import pearson, spearman

    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(100.0)
    # deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): covariance 4, variances 5 and 5
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(80.0)
    assert pearson([1, 2, 3, 4], [1, 4, 9, 16]) < 99.0
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(100.0)  # monotone
    # ties share their mean rank: x ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(100 * 4.5 / (4.5 * 5) ** 0.5)


def test_glue_scores_per_task():
    from pnlp_bench.core.metrics import glue_scores, metric_names

    gold, predicted = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    mrpc = glue_scores("mrpc", gold, predicted)  # TP 2 of 3 predicted and 3 gold positives: F1 2/3
    assert mrpc["f1"] == pytest.approx(200 / 3) and mrpc["accuracy"] == pytest.approx(60.0)
    assert mrpc["score"] == pytest.approx((200 / 3 + 60) / 2) and mrpc["examples"] == 5
    assert set(glue_scores("cola", gold, predicted)) == {"mcc", "score", "examples"}
    assert set(glue_scores("stsb", [0.0, 2.5, 5.0], [0.5, 2.0, 4.0])) == {"pearson", "spearman", "score", "examples"}
    assert glue_scores("sst2", gold, predicted)["accuracy"] == pytest.approx(60.0)
    assert metric_names("glue_stsb") == ("pearson", "spearman", "score") and metric_names("accuracy") == ("accuracy",)
