"""`bench speed` computes the same thing on both sides of every ratio, and writes a well-formed report.

Correctness only: nothing here asserts a time (timings belong in results/speed.md, not in tests).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import featurize
from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck, dense_counts
from pnlp_bench.mixer.models.heads import ClassificationHead, IntentSlotHead
from pnlp_bench.mixer.models.mixer import Mixer, MixerConfig
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection
from pnlp_bench.mixer.reference import DenseReferenceFeaturizer, DenseReferenceModel
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.commands.speed.bench import parse_config
from pnlp_bench.commands.speed.workload import Models, imdb_words, load_examples

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "Show me flights from Boston to Denver on Monday, please.",
    "I<br /><br />loved it: 10/10 -- the best film of 1999!!! Ünïcödé wörds, 東京 and emoji 🙂 too.",
    "a " + "x" * 150 + " word WordPiece cannot split",  # over the 100-character limit: fingerprinted whole
    "one",
    " ".join(f"word{i}" for i in range(30)),  # longer than S: cut
]


def examples_of(texts):
    return [Example(uid=str(i), lang="en", words=imdb_words(text), label="a") for i, text in enumerate(texts)]


@pytest.mark.parametrize("window", [0, 1, 2])
def test_reference_features_equal_the_fast_paths_counts(window):
    feature_size, seq_len = 97, 12  # F not a power of two, so the modulo matters
    projection = MinHashProjection(MinHashConfig(feature_size=feature_size, window=window))
    examples = examples_of(TEXTS)
    data = featurize({"train": examples}, projection, seq_len)
    buckets = data.word_table.indices[data.splits["train"].word_ids.long()]
    expected = dense_counts(buckets, window, feature_size)
    reference = DenseReferenceFeaturizer(projection, window, seq_len)
    for row, example in enumerate(examples):
        got = reference(example.words)
        assert got.shape == (seq_len, (2 * window + 1) * feature_size) and got.dtype == torch.float32
        assert torch.equal(got, expected[row]), row
    assert torch.equal(reference.batch([e.words for e in examples]), expected)
    # A real word's counts sum to n at its own slot; padding positions are empty at that slot.
    own = slice(window * feature_size, (window + 1) * feature_size)
    assert expected[3, 0, own].sum() == 64 and expected[3, 1, own].sum() == 0


def tiny_model(head: str, path: str, window: int) -> PNLPModel:
    torch.manual_seed(window)
    bottleneck = ProjectionBottleneck(feature_size=32, window=window, out_dim=16, path=path)
    backbone = Mixer(MixerConfig(num_layers=2, token_hidden=12, channel_hidden=20), seq_len=10, dim=16)
    task = IntentSlotHead(16, num_tags=5, num_intents=4) if head == "intent_slots" else ClassificationHead(16, 3)
    return PNLPModel(bottleneck, backbone, task).double()


@pytest.mark.parametrize("head", ["intent_slots", "classification"])
@pytest.mark.parametrize("path", ["bag", "dense"])
@pytest.mark.parametrize("window", [0, 1])
def test_reference_model_equals_fast_model_with_the_same_weights(head, path, window):
    model = tiny_model(head, path, window)
    indices = torch.randint(0, 32, (3, 10, 8))
    indices[0, 6:] = PAD
    indices[2, 2:] = PAD
    mask = indices[..., 0] != PAD
    reference = DenseReferenceModel.from_fast(model)
    fast_outputs = model(indices, mask)
    reference_outputs = reference(dense_counts(indices, window, 32).double(), mask)
    assert fast_outputs.keys() == reference_outputs.keys()
    for key in fast_outputs:
        torch.testing.assert_close(fast_outputs[key], reference_outputs[key])
    # from_fast copies: training the reference leaves the fast model's weights alone.
    with torch.no_grad():
        reference.bottleneck.weight.add_(1.0)
    torch.testing.assert_close(model(indices, mask)[next(iter(fast_outputs))], fast_outputs[next(iter(fast_outputs))])


def test_benchmark_models_agree_on_real_text_at_a_real_preset():
    config = parse_config(["datasets=[mtop_sample]"], quick=True)
    models = Models()
    examples, _ = load_examples("mtop_sample", config)
    examples = examples[:8]
    data = featurize({"train": examples}, models.projection("base"), 64)
    model = models.model("base", "mtop_sample", 64, data).eval()
    reference = DenseReferenceModel.from_fast(model).eval()
    featurizer = DenseReferenceFeaturizer(models.projection("base"), models.window("base"), 64)
    batch = data.batch("train", torch.arange(len(examples)), torch.device("cpu"))
    with torch.no_grad():
        fast = model(batch["features"], batch["mask"])
        dense = reference(featurizer.batch([e.words for e in examples]), batch["mask"])
    for key in fast:  # word positions: the padding-aware mixer leaves padding positions undefined
        mask = batch["mask"] if fast[key].dim() == 3 else torch.ones(fast[key].shape[0], dtype=torch.bool)
        torch.testing.assert_close(fast[key][mask], dense[key][mask], rtol=1e-4, atol=1e-4)


def test_config_errors_are_one_line_and_quick_defaults_yield_to_overrides():
    with pytest.raises(ConfigError, match="bogus.*valid keys: presets"):
        parse_config(["bogus=1"], quick=False)
    with pytest.raises(ConfigError, match="unknown preset 'huge'; valid: xs, small, base, large, xlarge"):
        parse_config(["presets=[xs,huge]"], quick=False)
    with pytest.raises(ConfigError, match="unknown data set 'sst2'"):
        parse_config(["datasets=[sst2]"], quick=False)
    config = parse_config(["presets=[large]", "max_length.imdb=2048"], quick=True)
    assert config.presets == ["large"] and config.max_length["imdb"] == 2048 and config.languages == ["en"]


def test_featurized_to_a_device_gives_the_same_batches():
    data = featurize({"train": examples_of(TEXTS)}, MinHashProjection(MinHashConfig(feature_size=64)), 12)
    moved = data.to("cpu")
    rows = torch.tensor([4, 0, 2])
    for key, value in data.batch("train", rows, torch.device("cpu")).items():
        assert torch.equal(value, moved.batch("train", rows, torch.device("cpu"))[key]), key


TINY = ["--quick", "datasets=[mtop_sample]", "presets=[xs]", "latency_presets=[xs]", "latency_data=mtop_sample",
        "reference_samples=20", "repeats=2", "warmup=1", "repeat_seconds=0.01", "latency_calls=10", "latency_threads=[1]"]


def bench_speed(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pnlp_bench.cli", "speed", *TINY, *extra, f"output={tmp_path / 'results' / 'speed'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, timeout=300,
    )


def test_bench_speed_quick_writes_a_well_formed_report(tmp_path):
    done = bench_speed(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fast / reference" in done.stdout and "wrote" in done.stdout
    record = json.loads((tmp_path / "results" / "speed.json").read_text())
    for key in ("commit", "dirty", "torch_version", "python_version", "date"):
        assert key in record["provenance"]
    assert record["hardware"]["cpu"] and record["config"]["presets"] == ["xs"]
    figures = {row["figure"].split(" (")[0].split(",")[0] for row in record["ratios"]}
    assert {"featurization mtop_sample", "training mtop_sample S=64 X-SMALL", "latency X-SMALL fp32 end to end"} <= figures
    for row in record["ratios"]:
        assert row["fast"] is not None and row["reference"] is not None, row
        assert row["ratio"] is None or row["ratio"] > 0, row  # None only where a peak memory could not be read
    samples = [row for row in record["ratios"] if "samples/s" in row["figure"]]
    assert samples and all(row["ratio"] > 0 for row in samples)
    training = record["training"][0]
    assert training["fast"]["flops_per_sample"] > 0 and training["fast"]["samples_per_second"]["median"] > 0
    assert training["reference"]["flops_per_sample"] > training["fast"]["flops_per_sample"]  # the dense bottleneck
    # the project's plain path (fp32, not padding-aware) timed in the same alternation
    assert training["plain"]["samples_per_second"]["median"] > 0 and training["ratio_to_plain"] > 0
    assert any("against the plain path" in row["figure"] for row in record["ratios"])
    assert {row["target"].split(" ")[0] for row in record["targets"]} >= {"multiATIS", "IMDB", "fingerprint", "BASE"}
    # onnxruntime (a dev dependency) served the same weights in the same alternation, against the same baseline
    latency = record["latency"][0]
    assert latency["onnx"].startswith("onnx: onnxruntime") and {row["path"] for row in latency["rows"]} >= {"onnx", "predictor"}
    assert latency["analysis"]["onnx_agreement"] >= 0.9 * latency["utterances"]
    onnx_figures = [row for row in record["ratios"] if "(onnx)" in row["figure"]]
    assert any("against the predictor" in row["figure"] for row in onnx_figures) and all(row["ratio"] > 0 for row in onnx_figures)
    profiled = training["analysis"]["step_profile"]
    if not torch.cuda.is_available():  # the CPU step profile: shares of a real step, the matmul-only bound above it
        assert abs(sum(profiled["shares"].values()) - 1.0) < 1e-6 and profiled["shares"]["matmul"] > 0
        assert profiled["matmul_only_bound_samples_per_second"] > training["fast"]["samples_per_second"]["median"] / 2
        assert any(row["target"].startswith("CPU: BASE MixerPredictor") for row in record["targets"])
    markdown = (tmp_path / "results" / "speed.md").read_text()
    assert record["provenance"]["commit"] in markdown and "fast/reference" in markdown and "fast/plain" in markdown
    if not torch.cuda.is_available():
        assert "GPU (H100) figures: pending" in markdown


def test_bench_speed_rejects_a_wrong_key_in_one_line(tmp_path):
    done = bench_speed(tmp_path, "presets=[tiny]")
    assert done.returncode == 2
    assert "unknown preset 'tiny'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_speed_on_cuda_with_compile_resident_data_and_fused_adam(tmp_path):
    done = bench_speed(tmp_path, "device=cuda", "compile=true", "warmup=2")
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "results" / "speed.json").read_text())
    fast = record["training"][0]["fast"]
    assert record["hardware"]["gpu"] and fast["resident_data"] and fast["compiled"] and fast["peak_memory_mb"] > 0
