"""`bench run` end to end on the embedded sample, in a subprocess, as a user types it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    # The checkout under test comes first, whatever copy of the package the environment has installed.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "BENCH_OUTPUT_ROOT": str(cwd / "outputs"), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "pnlp_bench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_run_on_embedded_sample_writes_the_run_record(tmp_path):
    done = bench("run", "model=mixer_xs", "trainer=smoke", "data.train_limit=300", "quiet=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (metrics_path,) = (tmp_path / "outputs" / "runs" / "mtop_sample").glob("mixer_xs-*/metrics.json")
    record = json.loads(metrics_path.read_text())
    run_dir = metrics_path.parent
    assert (run_dir / "config.yaml").exists() and (run_dir / "best.pt").exists()
    assert record["status"] == "finished"
    for split in ("eval", "test"):
        assert set(record["metrics"][split]) == {"en", "avg"}
        assert {"exact_match", "intent_accuracy", "slot_f1"} <= set(record["metrics"][split]["avg"])
    for field in ("commit", "package_version", "torch_version", "device", "date"):
        assert record["provenance"][field]
    assert record["epochs"] == 2 and record["seed"] == 0 and record["parameters"]["total"] > 200_000
    assert record["wall_seconds"] > 0 and len(record["history"]) == 2
    # where the time went: batch gathering is part of each epoch's training time; precision=auto resolved
    for epoch in record["history"]:
        assert 0 < epoch["gather_seconds"] < epoch["train_seconds"] and epoch["checkpoint_seconds"] > 0
    timings = record["timings"]
    assert timings["gather_seconds"] == sum(epoch["gather_seconds"] for epoch in record["history"])
    assert timings["eval_seconds"] > 0 and record["precision"] in {"fp32", "bf16"}
    check_predict(run_dir, tmp_path)


def check_predict(run_dir: Path, cwd: Path) -> None:
    """`bench predict` on the trained run: JSON lines with labels from the run's label space, the same
    predictions as the padded model for every eval utterance, and a one-line error for a folder without best.pt."""
    from pnlp_bench.mixer.data.base import DataConfig
    from pnlp_bench.mixer.data.loaders import load_data
    from pnlp_bench.mixer.inference import padded_inputs
    from pnlp_bench.core.paths import asset
    from pnlp_bench.commands.predict import load_trained, predictor_for

    done = bench("predict", str(run_dir), "wake me up at seven", "remind me to call mom", cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    model, projection, data_config, labels = load_trained(run_dir)
    assert [line["text"] for line in lines] == ["wake me up at seven", "remind me to call mom"]
    assert all(line["label"] in labels.labels and len(line["tags"]) == len(line["text"].split()) for line in lines)
    predict = predictor_for(model, projection, data_config.max_length)
    examples = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"])).splits["eval"]
    for example in examples:
        features, mask, values = padded_inputs(projection, example.words, data_config.max_length)
        with torch.inference_mode():
            padded = model.head.predict(model(features, mask, values), mask)
        fast = predict(example.words[: data_config.max_length])
        assert torch.equal(fast["label"], padded["label"]) and torch.equal(fast["tags"], padded["tags"][:, : fast["tags"].shape[1]])
    missing = bench("predict", str(cwd), "hello", cwd=cwd)
    assert missing.returncode == 2 and "best.pt: no checkpoint" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_multirun_sweeps_presets_into_separate_folders(tmp_path):
    done = bench(
        "run", "--multirun", "model=mixer_xs,mixer_small", "trainer=smoke", "trainer.epochs=1",
        "data.train_limit=200", "quiet=true", cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    folders = sorted(p.parent.name.split("-")[0] for p in (tmp_path / "outputs" / "runs").glob("*/*/metrics.json"))
    assert folders == ["mixer_small", "mixer_xs"]


def test_wrong_key_gives_one_clear_line(tmp_path):
    done = bench("run", "+trainer.epoch=3", cwd=tmp_path)
    assert done.returncode != 0
    assert "unknown key 'epoch'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_data_gives_one_clear_line(tmp_path):
    done = bench("run", "data=mtop", f"data.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert done.returncode != 0
    assert "MTOP not found" in done.stderr and "nowhere" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_preset_is_refused_by_hydra(tmp_path):
    done = bench("run", "model=mixer_huge", cwd=tmp_path)
    assert done.returncode != 0
    assert "mixer_huge" in done.stderr and "mixer_base" in done.stderr
