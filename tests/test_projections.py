"""The Table 1 projections (SimHash, binary, TSP, BERT embeddings): shapes, determinism, and the
property that makes each one what it claims to be."""

import numpy as np
import pytest
import torch

from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import featurize
from pnlp_bench.mixer.models.bottleneck import ProjectionBottleneck
from pnlp_bench.core.paths import MBERT_CASED_VOCAB
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.mixer.projection.bert import BertProjection, BertProjectionConfig
from pnlp_bench.mixer.projection.minhash import gram_bits, word_gram_lists
from pnlp_bench.mixer.projection.tsp import ternary_vectors
from pnlp_bench.core.registry import ConfigError

WORDS = ["flight", "flights", "Flight", "weather", "tomorrow", "unaffordable", "Recuérdame", "東京", "\u200b", "a"]
# Pairs sharing most of their trigrams, and pairs sharing none.
SIMILAR = [("flight", "flights"), ("weather", "weathers"), ("Toronto", "Torontos"), ("remind", "reminder")]
UNRELATED = [("flight", "weather"), ("Toronto", "alarm"), ("remind", "music"), ("tomorrow", "play")]
HASHING = ["simhash", "tsp", "binary"]


def build(name: str, **options):
    return PROJECTIONS.build(name, {"feature_size": 256, **options}, "projection")


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a == b).float().mean().item()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=0).item()


@pytest.mark.parametrize("name", HASHING)
def test_dense_features_have_every_bucket_and_fixed_dtypes(name):
    features = build(name).word_features(WORDS)
    assert features.indices.shape == features.values.shape == (len(WORDS), 256)
    assert features.indices.dtype == torch.int16
    assert torch.equal(features.indices, torch.arange(256, dtype=torch.int16).expand(len(WORDS), 256))
    assert features.values.dtype == {"simhash": torch.int8, "binary": torch.int8, "tsp": torch.int16}[name]


@pytest.mark.parametrize("name", HASHING)
def test_features_are_deterministic_per_word_and_follow_the_seed(name):
    first = build(name).word_features(WORDS).values
    again = build(name).word_features(list(reversed(WORDS))).values.flip(0)
    assert torch.equal(first, again), "a word's features must not depend on the other words or their order"
    assert not torch.equal(first, build(name, seed=1).word_features(WORDS).values)
    assert build(name).cache_key() != build(name, seed=1).cache_key() != build(name, feature_size=512).cache_key()


def test_simhash_signatures_are_balanced_bits():
    values = build("simhash", feature_size=1024).word_features(WORDS[:-2]).values
    assert set(values.unique().tolist()) == {0, 1}
    assert 0.4 < values.float().mean().item() < 0.6


def test_simhash_similar_words_share_more_bits_than_unrelated_ones():
    projection = build("simhash", feature_size=1024)
    similar = [agreement(*projection.word_features(list(pair)).values) for pair in SIMILAR]
    unrelated = [agreement(*projection.word_features(list(pair)).values) for pair in UNRELATED]
    assert min(similar) > 0.7, similar
    assert max(unrelated) < 0.6, unrelated


def test_simhash_bit_is_the_sign_of_the_gram_sum_with_ties_to_the_first_gram():
    (grams,) = word_gram_lists(["four"], MBERT_CASED_VOCAB)
    assert len(grams) == 2, "the test needs a word of exactly two grams"
    bits = gram_bits(grams, 1024, 0)
    signature = build("simhash", feature_size=1024).signatures(["four"])[0]
    agree = bits[0] == bits[1]
    # Where the two grams agree the sum is ±2 and its sign is theirs; where they disagree it is 0: a tie.
    assert np.array_equal(signature[agree], bits[0][agree])
    assert np.array_equal(signature[~agree], bits[0][~agree])
    assert 0 < agree.sum() < 1024
    (single,) = word_gram_lists(["a"], MBERT_CASED_VOCAB)
    assert np.array_equal(build("simhash", feature_size=1024).signatures(["a"])[0], gram_bits(single, 1024, 0)[0])


def test_tsp_per_gram_vectors_are_ternary_and_half_sparse():
    grams = [f"gram{i}".encode() for i in range(400)]
    vectors = ternary_vectors(grams, 256, 0)
    assert set(np.unique(vectors).tolist()) == {-1, 0, 1}
    total = vectors.size
    # pQRNN's table 00 -> 0, 01 -> +1, 10 -> -1, 11 -> 0: half zeros, a quarter each of +1 and -1.
    assert abs((vectors == 0).sum() / total - 0.5) < 0.01
    assert abs((vectors == 1).sum() / total - 0.25) < 0.01
    assert abs((vectors == -1).sum() / total - 0.25) < 0.01


def test_tsp_word_vector_is_the_sum_of_its_gram_vectors():
    projection = build("tsp")
    values = projection.word_features(WORDS).values
    for word, grams, row in zip(WORDS, word_gram_lists(WORDS, MBERT_CASED_VOCAB), values):
        assert np.array_equal(row.numpy(), ternary_vectors(grams, 256, 0).sum(axis=0)), word
    # A word of one gram keeps the ternary values and their sparsity.
    single = projection.word_features(["a"]).values
    assert set(single.unique().tolist()) <= {-1, 0, 1} and 0.3 < (single == 0).float().mean().item() < 0.7


def test_tsp_similar_words_share_their_vectors_and_the_word_unit_does_not():
    grams = build("tsp", feature_size=1024)
    words = build("tsp", feature_size=1024, unit="word")
    for pair in SIMILAR:
        assert cosine(*grams.word_features(list(pair)).values) > 0.6, pair
        assert abs(cosine(*words.word_features(list(pair)).values)) < 0.2, pair
    for pair in UNRELATED:
        assert abs(cosine(*grams.word_features(list(pair)).values)) < 0.2, pair
    values = words.word_features(WORDS).values
    assert set(values.unique().tolist()) == {-1, 0, 1}
    assert 0.45 < (values == 0).float().mean().item() < 0.55


def test_binary_codes_are_bits_of_the_word_itself():
    projection = build("binary", feature_size=1024)
    values = projection.word_features(WORDS + ["flight"]).values
    assert set(values.unique().tolist()) == {0, 1}
    assert 0.4 < values.float().mean().item() < 0.6
    assert torch.equal(values[0], values[-1])
    # A hashed identity: words that look alike get independent codes (about half the bits agree).
    for pair in SIMILAR:
        assert 0.4 < agreement(*projection.word_features(list(pair)).values) < 0.6, pair


@pytest.mark.parametrize("name", HASHING)
@pytest.mark.parametrize("path", ["bag", "dense", "words"])
def test_featurized_words_reach_the_bottleneck_as_their_dense_vectors(name, path):
    projection = build(name, feature_size=32)
    examples = [
        Example(uid="1", lang="en", words=["book", "a", "flight"], label="x"),
        Example(uid="2", lang="en", words=["weather", "tomorrow"], label="y"),
    ]
    data = featurize({"train": examples}, projection, max_length=4)
    batch = data.batch("train", torch.arange(2), torch.device("cpu"))
    bottleneck = ProjectionBottleneck(32, 1, 8, path)
    got = bottleneck(batch["features"], batch["values"])
    dense = torch.zeros(2, 4, 32)
    for row, example in enumerate(examples):
        dense[row, : len(example.words)] = projection.word_features(example.words).values.float()
    windowed = torch.cat([torch.nn.functional.pad(dense, (0, 0, 1 - k, k - 1))[:, :4] for k in range(3)], dim=-1)
    expected = windowed @ bottleneck.weight + bottleneck.bias
    torch.testing.assert_close(got, expected)


# BERT: a tiny BertModel stands in for mBERT, whose weights are not on this machine.
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "fl", "##ight", "##s", "weather", "a", "book"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    vocab = tmp_path_factory.mktemp("tiny-bert") / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    return BertModel(config).eval(), vocab


def test_bert_features_are_the_mean_of_the_piece_embeddings(tiny_bert):
    model, vocab = tiny_bert
    projection = BertProjection(BertProjectionConfig(feature_size=16, vocab=str(vocab)), model=model)
    table = model.embeddings.word_embeddings.weight.detach()
    features = projection.word_features(["flights", "weather", "zebra", "\u200b"])
    assert features.values.dtype == torch.float32 and features.values.shape == (4, 16)
    assert torch.equal(features.indices[0], torch.arange(16, dtype=torch.int16))
    piece = {name: index for index, name in enumerate(TINY_VOCAB)}
    torch.testing.assert_close(features.values[0], table[[piece["fl"], piece["##ight"], piece["##s"]]].mean(0))
    torch.testing.assert_close(features.values[1], table[piece["weather"]])
    # A word WordPiece cannot split, and a word with no piece at all, both get the [UNK] row.
    torch.testing.assert_close(features.values[2], table[piece["[UNK]"]])
    torch.testing.assert_close(features.values[3], table[piece["[UNK]"]])


def test_bert_loads_saved_weights_through_transformers(tiny_bert, tmp_path):
    model, vocab = tiny_bert
    model.save_pretrained(tmp_path / "weights")
    config = BertProjectionConfig(feature_size=16, vocab=str(vocab), weights=str(tmp_path / "weights"))
    loaded = PROJECTIONS.build("bert", vars(config), "projection")
    direct = BertProjection(config, model=model)
    assert torch.equal(loaded.word_features(["flights"]).values, direct.word_features(["flights"]).values)
    assert loaded.cache_key() == direct.cache_key()


def test_bert_with_the_mbert_vocabulary_size():
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=119_547, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    model = BertModel(config)
    features = BertProjection(BertProjectionConfig(feature_size=8), model=model).word_features(["unaffordable"])
    assert features.values.shape == (1, 8) and torch.isfinite(features.values).all()


def test_bert_without_weights_says_so_in_one_line(tmp_path):
    with pytest.raises(DataError, match="weights are not available here") as error:
        PROJECTIONS.build("bert", {"weights": str(tmp_path / "nowhere")}, "projection")
    assert "\n" not in str(error.value)


def test_bert_feature_size_must_match_the_model(tiny_bert):
    model, vocab = tiny_bert
    with pytest.raises(ConfigError, match="feature_size is 768 but the model's embeddings have 16"):
        BertProjection(BertProjectionConfig(vocab=str(vocab)), model=model)
