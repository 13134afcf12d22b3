"""projection=embedding: a trainable word-embedding input fitted on the training words (the fidelity control)."""

from __future__ import annotations

import torch

from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import featurize, featurize_cached
from pnlp_bench.mixer.projection.embedding import UNKNOWN, EmbeddingConfig, EmbeddingProjection
from tests.test_cli import bench


def example(words: str, split_tags: bool = True) -> Example:
    tokens = words.split()
    return Example(uid=words, lang="en", words=tokens, label="IN:X", tags=["O"] * len(tokens) if split_tags else None)


SPLITS = {
    "train": [example("wake me up"), example("wake me at seven"), example("call mom")],
    "eval": [example("wake dad up")],
    "test": [example("call me")],
}


def test_vocabulary_keeps_frequent_training_words_and_maps_the_rest_to_the_unknown_row():
    projection = EmbeddingProjection(EmbeddingConfig(feature_size=8, min_count=2))
    data = featurize(SPLITS, projection, max_length=8)
    assert projection.vocabulary == {"wake": 1, "me": 2}
    rows = data.word_table.indices[:, 0].tolist()  # row 0 of the table is padding
    words = ["wake", "me", "up", "at", "seven", "call", "mom", "dad"]
    assert rows[1:] == [1, 2] + [UNKNOWN] * 6, dict(zip(words, rows[1:]))


def test_feature_size_caps_the_vocabulary_and_lowercase_merges_case():
    projection = EmbeddingProjection(EmbeddingConfig(feature_size=2, min_count=1, lowercase=True))
    projection.fit(["Wake", "wake", "me", "up"])
    assert projection.vocabulary == {"wake": 1}
    assert projection.word_features(["WAKE", "me"]).indices[:, 0].tolist() == [1, UNKNOWN]


def test_cached_features_refit_the_vocabulary(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    first = EmbeddingProjection(EmbeddingConfig(feature_size=8, min_count=1))
    built, cached = featurize_cached(SPLITS, "toy-key", first, 8)
    second = EmbeddingProjection(EmbeddingConfig(feature_size=8, min_count=1))
    again, cached_again = featurize_cached(SPLITS, "toy-key", second, 8)
    assert (cached, cached_again) == (False, True)
    assert second.vocabulary == first.vocabulary and torch.equal(built.word_table.indices, again.word_table.indices)


def test_a_trained_embedding_run_predicts_new_text_from_its_checkpoint(tmp_path):
    done = bench(
        "run", "model=mixer_xs", "projection=embedding", "trainer=smoke", "data.train_limit=300", "quiet=true", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "runs" / "mtop_sample").glob("mixer_xs-*")
    from pnlp_bench.mixer.inference import padded_inputs
    from pnlp_bench.commands.predict import load_trained, predictor_for

    model, projection, data_config, labels = load_trained(run_dir)
    assert projection.vocabulary and len(projection.vocabulary) < 16384
    words = "wake me up at seven tomorrow".split()
    predicted = predictor_for(model, projection, data_config.max_length)(words)
    features, mask, values = padded_inputs(projection, words, data_config.max_length)
    with torch.inference_mode():
        padded = model.head.predict(model(features, mask, values), mask)
    assert torch.equal(predicted["label"], padded["label"])
    assert predicted["tags"][0].tolist() == padded["tags"][0, : len(words)].tolist()
