"""The vectorised `featurize` gives exactly what the original per-example loop gave, and its disk cache
gives back exactly what it stored."""

import zlib

import pytest
import torch

from pnlp_bench.mixer.data.base import DataConfig, Example

from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.features import LabelSpace, featurize, featurize_cached
from pnlp_bench.mixer.models.bottleneck import PAD
from pnlp_bench.mixer.models.heads import IGNORE
from pnlp_bench.core.paths import asset
from pnlp_bench.mixer.projection.base import WordFeatures
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection


def reference_featurize(splits, projection, max_length, labels=None):
    """The original implementation (one Python loop per example), kept as the specification."""
    labels = labels or LabelSpace.from_train(splits["train"])
    vocabulary = {}
    for examples in splits.values():
        for example in examples:
            for word in example.words[:max_length]:
                vocabulary.setdefault(word, len(vocabulary) + 1)
    features = projection.word_features(list(vocabulary))
    padding = torch.full((1, features.indices.shape[1]), PAD, dtype=features.indices.dtype)
    values = None
    if features.values is not None:
        values = torch.cat([torch.zeros(1, features.values.shape[1], dtype=features.values.dtype), features.values])
    table = WordFeatures(indices=torch.cat([padding, features.indices]), values=values)
    label_index = {label: index for index, label in enumerate(labels.labels)}
    tag_index = {tag: index for index, tag in enumerate(labels.tags)}
    tensors = {}
    for split, examples in splits.items():
        word_ids = torch.zeros(len(examples), max_length, dtype=torch.int32)
        tags = torch.full((len(examples), max_length), IGNORE, dtype=torch.long) if labels.tags else None
        truncated = 0
        for row, example in enumerate(examples):
            words = example.words[:max_length]
            truncated += len(example.words) > max_length
            word_ids[row, : len(words)] = torch.tensor([vocabulary[word] for word in words], dtype=torch.int32)
            if tags is not None and example.tags is not None:
                tags[row, : len(words)] = torch.tensor([tag_index.get(tag, IGNORE) for tag in example.tags[:max_length]])
        label = torch.tensor([label_index.get(example.label, IGNORE) for example in examples], dtype=torch.long)
        tensors[split] = (word_ids, label, tags, truncated)
    return table, tensors, labels


class HashProjection:
    """A cheap stand-in projection: 5 buckets per word from its CRC, optionally weighted."""

    feature_size = 97
    features_per_word = 5

    def __init__(self, weighted: bool = False) -> None:
        self.weighted = weighted
        self.calls = 0

    def word_features(self, words):
        self.calls += 1
        indices = torch.tensor([[(zlib.crc32(w.encode()) >> k) % 97 for k in range(5)] for w in words], dtype=torch.int16)
        values = indices.float() / 97 if self.weighted else None
        return WordFeatures(indices=indices.reshape(len(words), 5), values=values)

    def cache_key(self) -> str:
        return f"crc-{self.weighted}"


def assert_same_as_reference(splits, projection, max_length):
    table, tensors, labels = reference_featurize(splits, projection, max_length)
    data = featurize(splits, projection, max_length)
    assert data.labels == labels
    assert torch.equal(data.word_table.indices, table.indices)
    assert (data.word_table.values is None) == (table.values is None)
    if table.values is not None:
        assert torch.equal(data.word_table.values, table.values)
    for split, (word_ids, label, tags, truncated) in tensors.items():
        got = data.splits[split]
        assert got.word_ids.dtype == word_ids.dtype and torch.equal(got.word_ids, word_ids)
        assert got.label.dtype == label.dtype and torch.equal(got.label, label)
        assert (got.tags is None) == (tags is None)
        if tags is not None:
            assert got.tags.dtype == tags.dtype and torch.equal(got.tags, tags)
        assert got.truncated == truncated
    return data


def toy_splits():
    return {
        "train": [
            Example("1", "en", ["a", "b", "c", "a"], "x", ["B-s", "I-s", "O", "O"]),
            Example("2", "en", ["d"], "y", ["O"]),
            Example("3", "de", ["b", "e", "f", "g", "h", "a"], "x", None),  # a row without tags (MultiATIS++ policy)
        ],
        "eval": [Example("4", "en", ["z", "a"], "unseen", ["B-new", "O"])],
        "test": [Example("5", "en", ["a", "q", "r", "s", "t", "u", "v"], "y", ["O"] * 7), Example("6", "en", ["b"], "x", ["O"])],
    }


@pytest.mark.parametrize("max_length", [1, 3, 5, 64])
@pytest.mark.parametrize("weighted", [False, True])
def test_vectorised_featurize_equals_the_loop_on_toy_data(max_length, weighted):
    data = assert_same_as_reference(toy_splits(), HashProjection(weighted), max_length)
    assert data.splits["eval"].label.tolist() == [IGNORE]  # a label unseen in training


def test_classification_examples_have_no_tags():
    splits = {split: [Example(e.uid, e.lang, e.words, e.label) for e in rows] for split, rows in toy_splits().items()}
    data = assert_same_as_reference(splits, HashProjection(), 4)
    assert data.labels.tags == [] and all(t.tags is None for t in data.splits.values())


def test_the_projection_is_called_once_on_unique_words():
    projection = HashProjection()
    data = featurize(toy_splits(), projection, 64)
    assert projection.calls == 1
    assert data.word_table.indices.shape[0] == 1 + len({w for rows in toy_splits().values() for e in rows for w in e.words})


def test_vectorised_featurize_equals_the_loop_on_the_mtop_sample():
    loaded = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"]))
    projection = MinHashProjection(MinHashConfig(feature_size=1024, num_hashes=64, window=1))
    for max_length in (8, 64):
        assert_same_as_reference(loaded.splits, projection, max_length)


@pytest.mark.parametrize("weighted", [False, True])
def test_disk_cache_round_trip_is_exact(weighted):
    projection = HashProjection(weighted)
    fresh, was_read = featurize_cached(toy_splits(), f"toy-{weighted}", projection, 5)
    assert not was_read
    cached, was_read = featurize_cached(toy_splits(), f"toy-{weighted}", projection, 5)
    assert was_read and projection.calls == 1 and cached.labels == fresh.labels
    assert torch.equal(cached.word_table.indices, fresh.word_table.indices)
    if weighted:
        assert torch.equal(cached.word_table.values, fresh.word_table.values)
    for split, tensors in fresh.splits.items():
        got = cached.splits[split]
        assert torch.equal(got.word_ids, tensors.word_ids) and torch.equal(got.label, tensors.label)
        assert torch.equal(got.tags, tensors.tags) and got.truncated == tensors.truncated


def test_no_data_key_means_no_cache():
    projection = HashProjection()
    featurize_cached(toy_splits(), None, projection, 5)
    _, was_read = featurize_cached(toy_splits(), None, projection, 5)
    assert not was_read and projection.calls == 2


def test_cache_key_separates_max_words_and_projection():
    featurize_cached(toy_splits(), "toy-keys", HashProjection(), 5)
    _, was_read = featurize_cached(toy_splits(), "toy-keys", HashProjection(), 3)
    assert not was_read
    _, was_read = featurize_cached(toy_splits(), "toy-keys", HashProjection(weighted=True), 5)
    assert not was_read
