"""BiGS's long-document task: Hyperpartisan as raw text, on the pNLP-Mixer's folds, with F1 and accuracy."""

from __future__ import annotations

import gzip
import json

import pytest

from pnlp_bench.bigs.data.loaders import load_text_data
from pnlp_bench.bigs.data.text_tasks import TextDataConfig
from pnlp_bench.core.files import DataError
from pnlp_bench.core.metrics import metric_names, score_text_task


@pytest.mark.shared
def test_hyperpartisan_text_has_the_mixer_folds_and_whole_articles(shared_data):
    from pnlp_bench.mixer.data.base import DataConfig
    from pnlp_bench.mixer.data.loaders import load_data

    for fold in (0, 7):
        text = load_text_data(TextDataConfig(name="hyperpartisan_text", options={"fold": fold}))
        words = load_data(DataConfig(name="hyperpartisan", options={"fold": fold}))
        for split in ("train", "eval", "test"):
            assert [e.uid for e in text.splits[split]] == [e.uid for e in words.splits[split]]
            assert [e.label for e in text.splits[split]] == [int(e.label == "true") for e in words.splits[split]]
    assert text.report["articles"] == 645 and text.report["hyperpartisan"] == 238
    longest = max(len(e.text.split()) for e in text.splits["train"])
    assert longest > 4000  # the long tail that 4,096 tokens reach and 1,024 cut


def test_hyperpartisan_text_refuses_a_bad_line_naming_it(tmp_path):
    lines = [{"id": "1", "hyperpartisan": True, "text": "a b c"}, {"id": "2", "hyperpartisan": "yes", "text": "d"}]
    with gzip.open(tmp_path / "byarticle.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(line) for line in lines))
    with pytest.raises(DataError, match=r"byarticle.jsonl.gz:2: article 2: hyperpartisan must be true or false"):
        load_text_data(TextDataConfig(name="hyperpartisan_text", root=str(tmp_path)))


def test_binary_f1_scores_the_positive_class():
    scores = score_text_task("binary_f1", [1, 1, 0, 0], [1, 0, 0, 1])
    assert scores == {"f1": 50.0, "accuracy": 50.0, "examples": 4}
    assert metric_names("binary_f1") == ("f1", "accuracy")
