"""`bench run` end to end on the embedded sample, in a subprocess, as a user types it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
