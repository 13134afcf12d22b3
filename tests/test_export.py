"""`bench export` and `bench predict` on exported folders, on one tiny run of the embedded MTOP sample:
the hf folder loads back (from_pretrained) with exactly the run's predictions; the int8 file holds int8
weights a quarter the size and loads back with exactly the simulated int8 evaluation's outputs; --top-k and
--batch-size; push_to_hub up to the network; and one-line errors naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import compose_config

from pnlp_bench import cli
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.paths import asset
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.export import int8
from pnlp_bench.mixer.export.hf import PNLPMixerForHub, folder_words, load_folder
from pnlp_bench.mixer.inference import TextPredictor, padded_batch
from pnlp_bench.mixer.pipeline import load_trained, run_mixer
from pnlp_bench.mixer.quantize import int8_copy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    cfg = compose_config(["model=mixer_xs", "trainer=smoke", "trainer.epochs=1", "data.train_limit=200", "data.eval_limit=60",
                          "data.test_limit=60", "quantize.int8=true", "quiet=true", f"output_root={root / 'outputs'}"])
    run_mixer(cfg, root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def utterances() -> list[list[str]]:
    examples = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"])).splits["eval"]
    return [example.words for example in examples[:40]]


@pytest.fixture(scope="module")
def exported(run_dir: Path) -> dict[str, Path]:
    for kind in ("hf", "int8"):
        assert bench_main("export", str(run_dir), "--format", kind) == 0
    return {kind: run_dir / "export" / kind for kind in ("hf", "int8")}


def bench_main(*argv: str) -> int:
    try:
        cli.main(list(argv))
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def padded_outputs(model: torch.nn.Module, projection, seq_len: int, utterances: list[list[str]]) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return model(*padded_batch(projection, utterances, seq_len))


def test_hf_folder_round_trip(run_dir, exported, utterances):
    folder = exported["hf"]
    assert {path.name for path in folder.iterdir()} == {"config.json", "model.safetensors", "vocab.txt", "run_record.json", "README.md"}
    config = json.loads((folder / "config.json").read_text())
    model, projection, data_config, labels = load_trained(run_dir)
    assert config["labels"] == labels.labels and config["tags"] == labels.tags
    assert config["parameters"] == model.parameter_counts() and config["max_length"] == data_config.max_length
    assert config["run_config"]["projection"]["vocab"] == "vocab.txt"
    loaded = PNLPMixerForHub.from_pretrained(folder)
    assert isinstance(loaded, PNLPMixerForHub) and not loaded.training
    assert loaded.state_dict().keys() == model.state_dict().keys()
    expected = padded_outputs(model, projection, data_config.max_length, utterances)
    got = padded_outputs(loaded, loaded.projection, loaded.data_config.max_length, utterances)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    run_side = TextPredictor(model, projection, data_config.max_length, labels, top_k=3)
    folder_side = TextPredictor(loaded, loaded.projection, loaded.data_config.max_length, loaded.labels, top_k=3)
    assert [run_side.one(words) for words in utterances] == [folder_side.one(words) for words in utterances]
    # the card is written from the run's record: its numbers, budget, seed, licence and how to load
    record = json.loads((run_dir / "metrics.json").read_text())
    card = (folder / "README.md").read_text()
    assert f"{record['metrics']['test']['avg']['exact_match']:.2f}" in card
    assert f"{record['metrics_int8']['test']['avg']['exact_match']:.2f}" in card and "test (int8)" in card
    assert record["budget"] in card and f"seed {record['seed']}" in card and "CC BY-SA 4.0" in card
    assert "PNLPMixerForHub.from_pretrained" in card and "bench predict" in card
    assert f"{record['parameters']['total']:,}" in card


def test_int8_file_is_smaller_and_equals_the_simulated_evaluation(run_dir, exported, utterances):
    folder = exported["int8"]
    weights = folder / "model.int8.safetensors"
    assert weights.is_file() and not (folder / "model.safetensors").exists()
    fp32_size = (exported["hf"] / "model.safetensors").stat().st_size
    assert weights.stat().st_size < fp32_size / 3
    from safetensors import safe_open

    model, projection, data_config, _ = load_trained(run_dir)
    axes = int8.quantized_axes(model)
    with safe_open(str(weights), framework="pt") as handle:
        for name, axis in axes.items():  # every quantized weight: int8 values, one fp32 scale per channel
            q, scale = handle.get_tensor(name), handle.get_tensor(name + int8.SCALE_SUFFIX)
            assert q.dtype == torch.int8 and scale.dtype == torch.float32 and scale.numel() == q.shape[axis]
            assert q.numel() * 4 == model.state_dict()[name].numel() * model.state_dict()[name].element_size()
        assert handle.get_tensor("bottleneck.bias").dtype == torch.float32
    loaded = load_folder(folder)
    simulated, _ = int8_copy(model, "simulated")
    expected = padded_outputs(simulated, projection, data_config.max_length, utterances)
    got = padded_outputs(loaded, loaded.projection, data_config.max_length, utterances)
    fp32 = padded_outputs(model, projection, data_config.max_length, utterances)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    assert not torch.equal(got["intent_logits"], fp32["intent_logits"])  # int8 weights, not the fp32 ones
    # an int8 folder exports again: as hf it holds the dequantized weights and says so
    assert bench_main("export", str(folder), "--format", "hf", "--out", str(folder.parent / "again")) == 0
    again = load_folder(folder.parent / "again")
    assert torch.equal(padded_outputs(again, again.projection, data_config.max_length, utterances)["intent_logits"],
                       expected["intent_logits"])
    assert json.loads((folder.parent / "again" / "config.json").read_text())["dequantized_from_int8"] is True


def predict_lines(capsys, *argv: str) -> list[dict]:
    capsys.readouterr()
    assert bench_main("predict", *argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_top_k_and_batches(exported, utterances, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(" ".join(words) for words in utterances) + "\n\n")  # the blank line is skipped
    single = predict_lines(capsys, str(exported["hf"]), "--file", str(texts), "--words", "--top-k", "5")
    batched = predict_lines(capsys, str(exported["hf"]), "--file", str(texts), "--words", "--top-k", "5", "--batch-size", "7")
    assert len(single) == len(batched) == len(utterances)
    for one, many in zip(single, batched):
        assert one["text"] == many["text"]
        assert (one["label"], one["tags"]) == (many["label"], many["tags"])
        assert [label for label, _ in one["top_k"]] == [label for label, _ in many["top_k"]]
        assert one["probability"] == pytest.approx(many["probability"], abs=1e-5)
        probabilities = [probability for _, probability in one["top_k"]]
        assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
        assert one["top_k"][0] == [one["label"], one["probability"]]


def test_push_to_hub_uploads_the_folder(exported, monkeypatch):
    from huggingface_hub import HfApi

    uploaded: dict = {}

    def create_repo(self, repo_id, **kwargs):
        return type("Repo", (), {"repo_id": f"someone/{repo_id}"})()

    def upload_folder(self, repo_id, folder_path, **kwargs):
        uploaded.update(repo_id=repo_id, files=sorted(path.name for path in Path(folder_path).iterdir()),
                        config=json.loads((Path(folder_path) / "config.json").read_text()))
        return "https://huggingface.co/someone/tiny/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    model = PNLPMixerForHub.from_pretrained(exported["hf"])
    assert model.push_to_hub("tiny").endswith("/commit/0")
    assert uploaded["repo_id"] == "someone/tiny"
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors", "run_record.json", "vocab.txt"]
    assert uploaded["config"]["labels"] == model.labels.labels

    def offline(self, repo_id, **kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    with pytest.raises(OneLineError, match=r"push_to_hub\('tiny'\): the Hugging Face Hub refused or is unreachable") as error:
        model.push_to_hub("tiny")
    assert len(str(error.value).splitlines()) == 1


def test_onnx_words_are_the_training_words(run_dir, tmp_path):
    hub = load_folder(run_dir)
    words = folder_words(hub, None)
    assert len(words) == len(set(words)) > 100 and "alarm" in words
    listed = tmp_path / "words.txt"
    listed.write_text("wake\nme\n\nwake\n")
    assert folder_words(hub, listed) == ["wake", "me"]


def one_line_error(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert bench_main(*argv) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: ")
    return message


def test_errors_are_one_line_naming_the_file(run_dir, exported, tmp_path, capsys):
    assert "nowhere: no such folder" in one_line_error(capsys, "predict", str(tmp_path / "nowhere"), "hi")
    (tmp_path / "empty").mkdir()
    assert "empty/best.pt: no checkpoint, nor a config.json" in one_line_error(capsys, "export", str(tmp_path / "empty"), "--format", "hf")
    assert "unknown format 'tflite'; valid: hf, int8, onnx" in one_line_error(capsys, "export", str(run_dir), "--format", "tflite")
    damaged = tmp_path / "damaged"
    shutil.copytree(exported["hf"], damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert f"{weights} is damaged, it cannot be read" in one_line_error(capsys, "predict", str(damaged), "hi")
    weights.write_bytes(b"not a safetensors file")
    assert f"{weights} is damaged" in one_line_error(capsys, "export", str(damaged), "--format", "int8")
    (damaged / "config.json").write_text("{")
    assert f"{damaged / 'config.json'}: not valid JSON" in one_line_error(capsys, "predict", str(damaged), "hi")
    (damaged / "config.json").write_text(json.dumps({"format": "pnlp-mixer", "format_version": 1, "labels": [], "tags": []}))
    assert "'run_config' is missing" in one_line_error(capsys, "predict", str(damaged), "hi")
