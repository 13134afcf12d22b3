"""A BiGS fine-tuning killed with SIGKILL resumes from its last epoch and ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 6


def write_sst2(folder: Path) -> Path:
    """A small SST-2 in GLUE's layout (a header, then sentence<TAB>label), so the test needs no shared data."""
    rng = random.Random(0)
    words = ["good", "bad", "film", "plot", "dull", "great", "acting", "boring", "fine", "awful", "fun", "slow"]
    folder.mkdir(parents=True)
    for split, rows in (("train", 160), ("dev", 32)):
        lines = ["sentence\tlabel"] + [
            f"{' '.join(rng.choices(words, k=rng.randint(3, 12)))}\t{rng.randint(0, 1)}" for _ in range(rows)
        ]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def command(output_root: Path, data_root: Path) -> tuple[list[str], dict]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    args = [
        "run", "model=bigs_tiny", "data=sst2", f"data.root={data_root}", "data.max_length=32", "trainer=glue",
        f"trainer.epochs={EPOCHS}", "trainer.lr=1e-3", "trainer.num_threads=1", "quiet=true", f"output_root={output_root}",
    ]
    return [sys.executable, "-m", "pnlp_bench.cli", *args], {**os.environ, "PYTHONPATH": path}


def record(output_root: Path) -> dict:
    (path,) = output_root.glob("runs/sst2/bigs_tiny-*/metrics.json")
    return json.loads(path.read_text())


def test_finetuning_killed_after_its_first_checkpoint_resumes_to_the_same_metrics(tmp_path):
    data = write_sst2(tmp_path / "sst2")
    straight, env = command(tmp_path / "straight", data)
    done = subprocess.run(straight, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    interrupted_root = tmp_path / "interrupted"
    interrupted, env = command(interrupted_root, data)
    process = subprocess.Popen(interrupted, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(interrupted_root.glob("runs/*/*/last.pt")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list(interrupted_root.glob("runs/*/*/metrics.json")), "the kill should land before the run finished"

    resumed = subprocess.run(interrupted, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after, before = record(interrupted_root), record(tmp_path / "straight")
    assert 1 <= after["resumed_from_epoch"] < EPOCHS and before["resumed_from_epoch"] is None
    assert after["metrics"] == before["metrics"] and after["best"] == before["best"]
    assert [row["train_loss"] for row in after["history"]] == [row["train_loss"] for row in before["history"]]
    assert after["steps"] == before["steps"] == EPOCHS * 10
