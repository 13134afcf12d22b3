"""A run killed with SIGKILL resumes from its last checkpoint and ends exactly like an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["run", "model=mixer_xs", "data.train_limit=800", "data.eval_limit=100", "data.test_limit=100",
        "trainer.epochs=5", "quiet=true"]


def command(output_root: Path) -> tuple[list[str], dict]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return [sys.executable, "-m", "pnlp_bench.cli", *ARGS, f"output_root={output_root}"], env


def record(output_root: Path) -> dict:
    (path,) = output_root.glob("runs/mtop_sample/mixer_xs-*/metrics.json")
    return json.loads(path.read_text())


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    straight, env = command(tmp_path / "straight")
    assert subprocess.run(straight, env=env, cwd=tmp_path, capture_output=True, timeout=600).returncode == 0

    interrupted_root = tmp_path / "interrupted"
    interrupted, env = command(interrupted_root)
    process = subprocess.Popen(interrupted, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(interrupted_root.glob("runs/*/*/last.pt")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list(interrupted_root.glob("runs/*/*/metrics.json")) or record(interrupted_root)["status"] != "finished"

    resumed = subprocess.run(interrupted, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after, before = record(interrupted_root), record(tmp_path / "straight")
    assert after["resumed_from_epoch"] >= 1
    assert after["metrics"] == before["metrics"]
    assert [h["train_loss"] for h in after["history"]] == [h["train_loss"] for h in before["history"]]
    assert after["best_epoch"] == before["best_epoch"]
    # history.jsonl: each epoch once, whether it ran before the kill or after the resume
    (folder,) = interrupted_root.glob("runs/mtop_sample/mixer_xs-*")
    lines = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in lines] == [1, 2, 3, 4, 5]
    assert [row["train_loss"] for row in lines] == [h["train_loss"] for h in before["history"]]


def test_a_finished_run_is_not_trained_again(tmp_path):
    cmd, env = command(tmp_path)
    cmd = [*cmd[:-1], "trainer.epochs=1", cmd[-1]]
    assert subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, timeout=600).returncode == 0
    first = record(tmp_path)
    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    assert record(tmp_path)["provenance"]["date"] == first["provenance"]["date"]
