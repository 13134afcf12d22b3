"""The bag-of-words reference (`bench bow`, pnlp_bench/mixer/bow.py): features, fit, selection, the command."""

from __future__ import annotations

import json
import random

import pytest
import torch

from pnlp_bench.core.errors import OneLineError
from pnlp_bench.mixer.bow import build_vocabulary, evaluate, features, fit
from pnlp_bench.mixer.data.base import Example


def documents(count: int, seed: int) -> list[Example]:
    """Label 'pos' iff the document holds the word 'good' (among random filler); 'bad' marks the rest."""
    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(40)]
    examples = []
    for i in range(count):
        label = "pos" if i % 2 else "neg"
        words = rng.choices(filler, k=12) + ["Good" if label == "pos" else "bad"]
        rng.shuffle(words)
        examples.append(Example(uid=f"{seed}-{i}", lang="en", words=words, label=label))
    return examples


def test_vocabulary_keeps_words_in_min_df_documents_and_rows_have_unit_length():
    train = [Example("a", "en", ["x", "Y", "y"], "pos"), Example("b", "en", ["y", "z"], "neg")]
    vocabulary = build_vocabulary(train, min_df=2)
    assert list(vocabulary.index) == ["y"]  # lower-cased; x and z are in one document only
    assert build_vocabulary(train, min_df=1).index.keys() == {"x", "y", "z"}
    rows = features([*train, Example("c", "en", ["q"], "neg")], build_vocabulary(train, min_df=1)).to_dense()
    assert torch.allclose(rows[:2].norm(dim=1), torch.ones(2)) and rows[2].abs().sum() == 0  # no known word: zeros
    assert rows[0, 1] > rows[1, 1]  # y twice in a: 1 + log 2 against 1


def test_the_fit_learns_a_separable_rule_and_is_deterministic():
    train, test = documents(80, 0), documents(40, 1)
    vocabulary = build_vocabulary(train)
    x = features(train, vocabulary)
    first = fit(x, [e.label for e in train], ["neg", "pos"], C=10.0)
    again = fit(x, [e.label for e in train], ["neg", "pos"], C=10.0)
    assert torch.equal(first.weight, again.weight)
    assert first.predict(features(test, vocabulary)) == [e.label for e in test]
    weak = fit(x, [e.label for e in train], ["neg", "pos"], C=1e-4)  # strong regularisation: weights stay small
    assert weak.weight.abs().max() < first.weight.abs().max()


def test_selection_uses_the_eval_split_and_reports_the_grid():
    splits = {"train": documents(60, 0), "eval": documents(20, 1), "test": documents(20, 2)}
    result = evaluate(splits, [0.01, 10.0], "f1")
    assert [row["C"] for row in result["grid"]] == [0.01, 10.0]
    best = max(result["grid"], key=lambda row: row["eval"])
    assert result["C"] == best["C"] and result["scores"]["eval"]["f1"] == best["eval"]
    assert result["scores"]["test"]["accuracy"] >= 90.0 and result["examples"] == {"train": 60, "eval": 20, "test": 20}
    with pytest.raises(ValueError, match="monitor 'exact_match'"):
        evaluate(splits, [1.0], "exact_match")


def test_folds_and_grid_are_checked_with_one_line_errors():
    from pnlp_bench.commands.bow import parse_folds, parse_grid

    assert parse_folds("0-2,5") == [0, 1, 2, 5]
    for text in ("0-10", "a", ""):
        with pytest.raises(OneLineError, match="--folds"):
            parse_folds(text)
    with pytest.raises(OneLineError, match="every C must be > 0"):
        parse_grid("1,0")


def test_bench_bow_on_hyperpartisan_folds_writes_the_report(shared_data, tmp_path, monkeypatch):
    from pnlp_bench.commands.bow import main

    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))
    output = tmp_path / "bow_hp"
    assert main(["data=hyperpartisan", "--folds", "0,3", "--grid", "1,10", "--output", str(output)]) == 0
    result = json.loads(output.with_suffix(".json").read_text())
    assert [run["fold"] for run in result["runs"]] == [0, 3]
    for run in result["runs"]:
        assert run["examples"] == {"train": 515, "eval": 65, "test": 65}  # the folds a bench run trains on
        assert 0 <= run["scores"]["test"]["f1"] <= 100 and run["C"] in (1.0, 10.0)
    assert result["runs"][0]["scores"] != result["runs"][1]["scores"]  # two folds, two test splits
    text = output.with_suffix(".md").read_text()
    assert "Mean ± std over folds 0, 3" in text and "| 3 | " in text


def test_bench_bow_refuses_a_tagging_data_set():
    from pnlp_bench.commands.bow import main

    with pytest.raises(OneLineError, match="not a classification data set"):
        main(["data=mtop"])
