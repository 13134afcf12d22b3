"""MixerPredictor computes what PNLPModel.forward computes, for one utterance, with less work: checked on
random models of both heads, windows 0-2, one to three blocks, utterances of 1 word up to longer than S,
sparse (MinHash) and dense (SimHash-like) word features; and its word cache stays bounded."""

import hashlib

import pytest
import torch

from pnlp_bench.mixer.inference import MixerPredictor, padded_inputs
from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck
from pnlp_bench.mixer.models.heads import ClassificationHead, IntentSlotHead
from pnlp_bench.mixer.models.lstm import LSTMConfig, build_lstm
from pnlp_bench.mixer.models.mixer import Mixer, MixerConfig
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection.base import WordFeatures
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection
from pnlp_bench.core.registry import ConfigError

SEQ_LEN = 10
FEATURES = 32
DIM = 16


class HashedWords:
    """A stand-in projection: k buckets per word from its md5 (some repeated, some PAD), or dense values."""

    def __init__(self, per_word: int = 6, dense: bool = False) -> None:
        self.per_word, self.dense = per_word, dense
        self.calls = 0

    def word_features(self, words):
        self.calls += 1
        digests = [hashlib.md5(word.encode()).digest() for word in words]
        if self.dense:
            rows = torch.tensor([[((d[i % 16] >> (i % 8)) & 1) * 2.0 - 1.0 for i in range(FEATURES)] for d in digests])
            return WordFeatures.from_dense(rows)
        indices = torch.tensor([[d[i] % FEATURES for i in range(self.per_word)] for d in digests], dtype=torch.int16)
        indices[:, -1] = torch.where(indices[:, 0] % 3 == 0, PAD, indices[:, -1])  # some words have fewer buckets
        return WordFeatures(indices=indices)


def model_for(head: str, window: int, layers: int, seed: int = 0) -> PNLPModel:
    torch.manual_seed(seed)
    bottleneck = ProjectionBottleneck(FEATURES, window, DIM, "bag")
    mixer = Mixer(MixerConfig(num_layers=layers, token_hidden=12, channel_hidden=20), SEQ_LEN, DIM)
    top = IntentSlotHead(DIM, num_tags=5, num_intents=4) if head == "intent_slots" else ClassificationHead(DIM, 3)
    return PNLPModel(bottleneck, mixer, top).eval()


def model_outputs(model: PNLPModel, projection: HashedWords, words: list[str]) -> dict[str, torch.Tensor]:
    """What training and `bench run` compute: the utterance padded to S, batch 1."""
    with torch.inference_mode():
        return model(*padded_inputs(projection, words, SEQ_LEN))


UTTERANCES = [["one"], ["two", "words"], "a b c d e f g".split(), [f"w{i}" for i in range(SEQ_LEN - 1)],
              [f"w{i}" for i in range(SEQ_LEN)], [f"long{i}" for i in range(SEQ_LEN + 4)], ["rep", "rep", "rep"]]


@pytest.mark.parametrize("head", ["intent_slots", "classification"])
@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("dense", [False, True])
def test_predictor_equals_the_model(head, window, layers, dense):
    projection = HashedWords(dense=dense)
    model = model_for(head, window, layers)
    predictor = MixerPredictor(model, projection, SEQ_LEN)
    for words in UTTERANCES:
        expected = model_outputs(model, projection, words)
        got = predictor.outputs(words)
        n = min(len(words), SEQ_LEN)
        for key, value in got.items():
            reference = expected[key][:, :n] if key == "tag_logits" else expected[key]
            assert value.shape == reference.shape, key
            torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-5)
        predicted, wanted = predictor.predict(words), model.head.predict(expected)
        assert torch.equal(predicted["label"], wanted["label"])
        if "tags" in predicted:
            assert torch.equal(predicted["tags"], wanted["tags"][:, :n])


def test_the_padding_rows_matter():
    """The tail sums are not a no-op: drop them (as if padding rows were zero) and the outputs change."""
    projection = HashedWords()
    model = model_for("classification", 1, 2)
    predictor = MixerPredictor(model, projection, SEQ_LEN)
    words = ["a", "b", "c"]
    expected = model_outputs(model, projection, words)["logits"]
    torch.testing.assert_close(predictor.outputs(words)["logits"], expected, rtol=1e-5, atol=1e-5)
    predictor._tail.zero_()
    predictor._first_weights.clear()
    assert not torch.allclose(predictor.outputs(words)["logits"], expected, atol=1e-4)


def test_real_minhash_projection():
    projection = MinHashProjection(MinHashConfig(feature_size=FEATURES, num_hashes=8, window=1))
    model = model_for("intent_slots", 1, 2)
    predictor = MixerPredictor(model, projection, SEQ_LEN)
    words = "set an alarm for seven tomorrow morning".split()
    expected = model_outputs(model, projection, words)
    torch.testing.assert_close(predictor.outputs(words)["intent_logits"], expected["intent_logits"], rtol=1e-5, atol=1e-5)


def test_word_cache_is_reused_and_bounded():
    projection = HashedWords()
    predictor = MixerPredictor(model_for("classification", 1, 2), projection, SEQ_LEN, cache_words=5)
    predictor.predict(["a", "b", "a"])
    assert (predictor.misses, predictor.hits) == (2, 1) and projection.calls == 1
    predictor.predict(["a", "b"])
    assert projection.calls == 1  # all cached: the projection is not asked again
    first = predictor.outputs(["a", "b", "c"])["logits"]
    predictor.predict([f"x{i}" for i in range(SEQ_LEN)])  # more words than the cache holds
    assert len(predictor._cache) <= 5
    torch.testing.assert_close(predictor.outputs(["a", "b", "c"])["logits"], first)  # recomputed the same


def test_bad_inputs():
    with pytest.raises(ConfigError, match="mixer backbone"):
        lstm = build_lstm(LSTMConfig(), SEQ_LEN, DIM)
        MixerPredictor(PNLPModel(ProjectionBottleneck(FEATURES, 1, DIM), lstm, ClassificationHead(DIM, 2)), HashedWords(), SEQ_LEN)
    with pytest.raises(ConfigError, match="S = 10 positions, got seq_len 12"):
        MixerPredictor(model_for("classification", 1, 2), HashedWords(), SEQ_LEN + 2)
    with pytest.raises(ValueError, match="at least one word"):
        MixerPredictor(model_for("classification", 1, 2), HashedWords(), SEQ_LEN).predict([])
