"""The ONNX export computes what the torch model computes: onnxruntime's logits against torch's on the
embedded MTOP sample for a model trained a few steps, the decoded labels and tags against MixerPredictor's,
a dense-valued projection with the classification head, words missing from the table, the folder's README
snippet run as written, and one-line errors for what cannot be exported or served."""

import json
import re

import numpy as np
import onnx
import pytest
import torch

from pnlp_bench.core.paths import asset
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import LabelSpace, featurize, kept_words
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.export.onnx import OnnxPredictor, export_onnx, parity
from pnlp_bench.mixer.inference import MixerPredictor, padded_inputs
from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck
from pnlp_bench.mixer.models.heads import ClassificationHead, IntentSlotHead
from pnlp_bench.mixer.models.lstm import LSTMConfig, build_lstm
from pnlp_bench.mixer.models.mixer import Mixer, MixerConfig
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection
from pnlp_bench.mixer.projection.simhash import SimHashConfig, SimHashProjection

# onnxruntime against torch, fp32 on both sides: the dense bottleneck and the plain mixer sum in another
# order than the bag path and the padding-aware mixer, which moves logits by ~1e-6 here (2e-5 on BASE).
TOLERANCE = 1e-4
SEQ_LEN, DIM = 32, 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small pNLP-Mixer (MinHash, window 1, Viterbi decoding) trained 30 steps on the MTOP sample, and its export."""
    loaded = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"]))
    projection = MinHashProjection(MinHashConfig(feature_size=128, num_hashes=16, window=1))
    data = featurize({"train": loaded.splits["train"]}, projection, SEQ_LEN)
    labels = data.labels
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread trains as fast and never oversubscribes
    model = PNLPModel(
        ProjectionBottleneck(128, 1, DIM, "dense"),
        Mixer(MixerConfig(num_layers=2, token_hidden=24, channel_hidden=48), SEQ_LEN, DIM),
        IntentSlotHead(DIM, len(labels.tags), len(labels.labels), "viterbi", list(labels.tags)),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):
        batch = data.batch("train", torch.arange(step * 64, step * 64 + 64) % len(loaded.splits["train"]), torch.device("cpu"))
        loss = model.head.loss(model(batch["features"], batch["mask"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    model.bottleneck.path = "bag"  # served by the gather path, as on a CPU: the export still writes the dense one
    model.eval()
    words = list(dict.fromkeys(word for example in loaded.splits["train"] for word in kept_words(example, SEQ_LEN)))
    data_config = DataConfig(name="mtop", max_length=SEQ_LEN, head="intent_slots", head_options={"decode": "viterbi"})
    folder = tmp_path_factory.mktemp("onnx") / "export"
    report = export_onnx(model, projection, data_config, labels, folder, words)
    return {"model": model, "projection": projection, "labels": labels, "folder": folder, "report": report,
            "words": words, "eval": [example.words for example in loaded.splits["eval"]], "loss": loss.item()}


def test_the_folder_and_its_report(trained):
    report, folder = trained["report"], trained["folder"]
    assert set(report["files"]) == {"model.onnx", "featurizer.json", "features.bin", "labels.json", "README.md"}
    assert all(report["sizes"][name] == (folder / name).stat().st_size > 0 for name in report["files"])
    graph = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(graph)
    assert report["opset"] == 17 and "dynamo=False" in report["exporter"]
    assert [node.name for node in graph.graph.input] == ["features", "mask"]
    assert [node.name for node in graph.graph.output] == ["intent_logits", "tag_logits"]
    # standard ops only: no gather path (EmbeddingBag is no ONNX op), the bottleneck is one Gemm/MatMul
    assert {node.op_type for node in graph.graph.node} <= {
        "Add", "Cast", "Concat", "Constant", "ConstantOfShape", "Div", "Einsum", "Equal", "Erf", "Expand", "Gather",
        "Gemm", "Identity", "LayerNormalization", "MatMul", "Mul", "Not", "Pad", "Reshape", "ScatterElements",
        "Shape", "Slice", "Softmax", "Squeeze", "Transpose", "Unsqueeze", "Where"}
    featurizer = json.loads((folder / "featurizer.json").read_text())
    assert featurizer["words"] == trained["words"] and featurizer["table"]["shape"] == [len(trained["words"]), 16]
    table = np.fromfile(folder / "features.bin", dtype=featurizer["table"]["features_dtype"]).reshape(featurizer["table"]["shape"])
    assert np.array_equal(table, trained["projection"].word_features(trained["words"]).indices.numpy())
    labels = json.loads((folder / "labels.json").read_text())
    assert labels["labels"] == trained["labels"].labels and labels["tags"] == trained["labels"].tags
    assert labels["decode"] == "viterbi" and labels["outputs"] == ["intent_logits", "tag_logits"]
    check = report["check"]
    assert check["utterances"] > 0 and max(check["max_abs_diff"].values()) < TOLERANCE and check["label_agreement"] == 1.0


def test_onnxruntime_matches_torch_on_real_utterances(trained):
    assert trained["loss"] < 6.0  # trained: far from the uniform guess over ~100 tags and ~50 intents
    result = parity(trained["model"], trained["projection"], trained["folder"], trained["eval"])
    assert result["utterances"] == len(trained["eval"]) == 400
    assert result["max_abs_diff"]["intent_logits"] < TOLERANCE and result["max_abs_diff"]["tag_logits"] < TOLERANCE
    assert result["label_agreement"] == 1.0 and result["tag_agreement"] == 1.0
    # the same predictions as the single-utterance torch path, in its dict shape
    predictor = OnnxPredictor(trained["folder"])
    mixer = MixerPredictor(trained["model"], trained["projection"], SEQ_LEN)
    for words in trained["eval"][:50]:
        got, expected = predictor.predict(words), mixer.predict(words)
        assert got.keys() == expected.keys() and got["tags"].shape == expected["tags"].shape == (1, len(words))
        assert torch.equal(got["label"], expected["label"]) and torch.equal(got["tags"], expected["tags"])


def test_the_batch_axis_is_dynamic(trained):
    predictor = OnnxPredictor(trained["folder"])
    utterances = trained["eval"][:5]
    together = predictor.outputs(utterances)
    assert together["intent_logits"].shape == (5, len(trained["labels"].labels))
    assert together["tag_logits"].shape == (5, SEQ_LEN, len(trained["labels"].tags))
    for row, words in enumerate(utterances):
        alone = predictor.outputs([words])
        np.testing.assert_allclose(alone["intent_logits"][0], together["intent_logits"][row], atol=1e-5)


def test_words_missing_from_the_table(trained):
    words = ["set", "an", "alarm", "zqxjwv", "Übermorgen"]  # the last two are in no training utterance
    assert [word in trained["words"] for word in words] == [True, True, True, False, False]
    empty = OnnxPredictor(trained["folder"], unknown="empty")
    features = empty.inputs([words])["features"][0]
    assert (features[3:5] == PAD).all() and (features[5:] == PAD).all() and (features[:3] != PAD).all()
    assert empty.inputs([words])["mask"][0].tolist() == [True] * 5 + [False] * (SEQ_LEN - 5)
    projected = OnnxPredictor(trained["folder"], unknown="project")
    exact = trained["projection"].word_features(words).indices.numpy()
    assert np.array_equal(projected.inputs([words])["features"][0, :5], exact)
    torch_prediction = MixerPredictor(trained["model"], trained["projection"], SEQ_LEN).predict(words)
    assert torch.equal(projected.predict(words)["tags"], torch_prediction["tags"])
    # no words: the model needs one
    with pytest.raises(ValueError, match="at least one word"):
        projected.predict([])


def test_the_readme_snippet_runs_as_written(trained, monkeypatch):
    readme = (trained["folder"] / "README.md").read_text()
    for name in ("features", "mask", "intent_logits", "tag_logits", "int64", "bool", "float32", "Viterbi".lower()):
        assert name in readme.lower()
    assert "xxh64" in readme and "mod F" in readme  # the exact MinHash recipe for a word outside the table
    (snippet,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    monkeypatch.chdir(trained["folder"])
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - the folder's own documentation, run as a user would
    assert scope["label"] in trained["labels"].labels
    assert scope["outputs"]["tag_logits"].shape == (1, SEQ_LEN, len(trained["labels"].tags))


@pytest.mark.parametrize("window", [0, 2])
def test_a_dense_valued_projection_with_the_classification_head(tmp_path, window):
    """SimHash weights every bucket: the graph takes `values` too; classification heads export one output."""
    projection = SimHashProjection(SimHashConfig(feature_size=24, window=window))
    torch.manual_seed(window)
    model = PNLPModel(ProjectionBottleneck(24, window, 16, "dense"),
                      Mixer(MixerConfig(num_layers=1, token_hidden=8, channel_hidden=12), 10, 16),
                      ClassificationHead(16, 3)).eval()
    words = "the film was great , i loved every minute of it".split()
    report = export_onnx(model, projection, DataConfig(name="imdb", max_length=10, head="classification"),
                         LabelSpace(labels=["neg", "pos", "mixed"]), tmp_path, words)
    assert set(report["files"]) >= {"values.bin"} and [item["name"] for item in report["inputs"]] == ["features", "mask", "values"]
    assert [item["name"] for item in report["outputs"]] == ["logits"]
    utterances = [words[:4], words, words + ["unseen"], ["one"]]
    result = parity(model, projection, tmp_path, utterances)
    assert result["max_abs_diff"]["logits"] < TOLERANCE and result["label_agreement"] == 1.0
    predicted = OnnxPredictor(tmp_path).predict(words[:3])
    features, mask, values = padded_inputs(projection, words[:3], 10)
    with torch.inference_mode():
        assert torch.equal(predicted["label"], model.head.predict(model(features, mask, values))["label"])


def test_what_cannot_be_exported_or_served_fails_in_one_line(trained, tmp_path):
    lstm = PNLPModel(ProjectionBottleneck(128, 1, DIM), build_lstm(LSTMConfig(), seq_len=SEQ_LEN, dim=DIM),
                     IntentSlotHead(DIM, 3, 2))
    data_config = DataConfig(name="mtop", max_length=SEQ_LEN)
    with pytest.raises(ConfigError, match=r"backbone BiLSTM is not exported .*backbone.name must be mixer"):
        export_onnx(lstm, trained["projection"], data_config, LabelSpace(["a", "b"], ["O", "B-X", "I-X"]), tmp_path, ["a"])
    with pytest.raises(ConfigError, match="data.max_length: 16, but the model mixes over 32 positions"):
        export_onnx(trained["model"], trained["projection"], DataConfig(name="mtop", max_length=16), trained["labels"],
                    tmp_path, ["a"])
    with pytest.raises(ConfigError, match="no words for the word table"):
        export_onnx(trained["model"], trained["projection"], data_config, trained["labels"], tmp_path, [])
    with pytest.raises(ConfigError, match=r"model.onnx: missing; is .* a folder of `bench export RUN_DIR --format onnx`"):
        OnnxPredictor(tmp_path)
    with pytest.raises(ConfigError, match="unknown must be auto, project, empty, got 'guess'"):
        OnnxPredictor(trained["folder"], unknown="guess")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in trained["report"]["files"]:
        (copy / name).write_bytes((trained["folder"] / name).read_bytes())
    featurizer = json.loads((copy / "featurizer.json").read_text())
    (copy / "featurizer.json").write_text(json.dumps({**featurizer, "format": "other"}))
    with pytest.raises(ConfigError, match=r"featurizer.json: format 'other', expected 'pnlp-bench onnx v1'") as error:
        OnnxPredictor(copy)
    assert "\n" not in str(error.value)


def test_the_readme_minhash_recipe_gives_the_projections_buckets(trained):
    """The recipe a runtime without pnlp_bench follows for a word outside the table, written out from the
    README's steps (WordPiece from the tokenizers library, hashes from xxhash), equals the projection."""
    import xxhash
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    from pnlp_bench.core.paths import MBERT_CASED_VOCAB

    readme = (trained["folder"] / "README.md").read_text()
    assert "0x9E3779B1" in readme and "marker 0x02" in readme
    config = trained["projection"].config
    vocab = MBERT_CASED_VOCAB.read_text(encoding="utf-8").split("\n")[:-1]
    tokenizer = Tokenizer(WordPiece({piece: index for index, piece in enumerate(vocab)}, unk_token="[UNK]",
                                    max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                      lowercase=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    mask64 = (1 << 64) - 1

    def grams(text: str, marker: bytes) -> list[bytes]:
        if len(text) < 3:
            return [marker + text.encode()]
        return [marker + text[start : start + 3].encode() for start in range(len(text) - 2)]

    def buckets(word: str) -> list[int]:
        pieces = tokenizer.encode(word, add_special_tokens=False).tokens
        if not pieces or "[UNK]" in pieces:
            word_grams = grams(word, b"\x02")
        else:
            word_grams = [gram for piece in pieces for gram in (
                [b"\x00" + piece.encode()] if piece.startswith("[") and piece.endswith("]")
                else grams(piece[2:], b"\x01") if piece.startswith("##") else grams(piece, b"\x00"))]
        fingerprint = [mask64] * config.num_hashes
        for gram in word_grams:
            first = xxhash.xxh64_intdigest(gram, seed=config.seed)
            second = xxhash.xxh64_intdigest(gram, seed=config.seed + 0x9E3779B1) | 1
            fingerprint = [min(value, (first + i * second) & mask64) for i, value in enumerate(fingerprint)]
        return [value % config.feature_size for value in fingerprint]

    words = ["alarm", "Übermorgen", "reminders", "a", "東京", "x" * 120, "zqxjwv"]
    expected = trained["projection"].word_features(words).indices.tolist()
    assert [buckets(word) for word in words] == expected
