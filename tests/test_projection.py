import numpy as np
import pytest
import torch

from pnlp_bench.mixer.models.bottleneck import PAD, window_indices
from pnlp_bench.mixer.projection.minhash import (
    MinHashConfig,
    MinHashProjection,
    fingerprint_table,
    grams_of,
    piece_grams,
)
from pnlp_bench.mixer.projection.tokenizer import split_words


@pytest.fixture(scope="module")
def projection() -> MinHashProjection:
    return MinHashProjection(MinHashConfig(feature_size=1024, num_hashes=64))


def test_subword_fingerprint_is_min_over_its_trigrams(projection):
    # Figure 2 of the paper: "Bring" -> Bri, rin, ing, and the column-wise minimum.
    assert grams_of("Bring", b"\x00") == [b"\x00Bri", b"\x00rin", b"\x00ing"]
    from pnlp_bench.mixer.projection.minhash import hash_family

    expected = hash_family(grams_of("Bring", b"\x00"), 64, 0).min(axis=0)
    assert np.array_equal(projection.word_fingerprints(["Bring"])[0], expected)


def test_word_fingerprint_is_min_of_its_subword_fingerprints(projection):
    words = ["unaffordable", "Kratzer", "festivals", "Recuérdame"]
    pieces = split_words(words)
    assert any(len(p) > 1 for p in pieces), "the test needs words of several pieces"
    table = projection.table
    fingerprints = projection.word_fingerprints(words)
    for word_pieces, fingerprint in zip(pieces, fingerprints):
        assert np.array_equal(fingerprint, table[word_pieces].min(axis=0))


def test_continuation_pieces_and_short_pieces_are_kept_apart():
    assert piece_grams("##ing") != piece_grams("ing")
    assert piece_grams("a") == [b"\x00a"]
    assert piece_grams("##ab") == [b"\x01ab"]


def test_counts_sum_to_n_and_padding_to_zero(projection):
    features = projection.word_features(["hello", "world", "東京", "\u200b"]).indices
    assert features.shape == (4, 64)
    counts = torch.zeros(4, 1024).scatter_add_(1, features.long(), torch.ones(4, 64))
    assert torch.all(counts.sum(1) == 64)
    padded = torch.full((1, 1, 64), PAD)
    assert torch.all(window_indices(padded, 1, 1024) == PAD)


def test_unsplittable_words_do_not_share_one_fingerprint(projection):
    a, b = projection.word_fingerprints(["\U0001F600x", "\U0001F680y"])
    assert not np.array_equal(a, b)


def test_fingerprint_table_is_cached(projection, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    first = fingerprint_table(projection.vocab_path, 8, 3)
    assert list((tmp_path / "fingerprints").glob("*.npy"))
    assert np.array_equal(first, fingerprint_table(projection.vocab_path, 8, 3))


@pytest.mark.parametrize("window", [0, 1, 2])
def test_window_concatenates_neighbours_with_zeros_outside(window):
    feature_size, length, per_word = 10, 5, 2
    indices = torch.randint(0, feature_size, (2, length, per_word))
    indices[1, 3:] = PAD  # a shorter second sentence
    windowed = window_indices(indices, window, feature_size)
    assert windowed.shape == (2, length, (2 * window + 1) * per_word)
    for b in range(2):
        for t in range(length):
            for slot, k in enumerate(range(-window, window + 1)):
                got = windowed[b, t, slot * per_word : (slot + 1) * per_word]
                if 0 <= t + k < length and indices[b, t + k, 0] != PAD:
                    assert torch.equal(got, indices[b, t + k] + slot * feature_size)
                else:
                    assert torch.all(got == PAD)
