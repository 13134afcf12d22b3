"""A single run on two CPU processes through torchrun, DistributedDataParallel and the gloo backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_two_process_gloo_run(tmp_path):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "pnlp_bench.cli", "run", "model=mixer_xs", "trainer=smoke", "trainer.epochs=3", "trainer.device=cpu",
        "data.train_limit=400", "data.eval_limit=100", "data.test_limit=100", "quiet=true", f"output_root={tmp_path}",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("runs/mtop_sample/mixer_xs-*/metrics.json")
    record = json.loads(path.read_text())
    assert record["status"] == "finished" and record["world_size"] == 2
    losses = [entry["train_loss"] for entry in record["history"]]
    assert losses[-1] < losses[0]
    # Only rank 0 wrote to the store.
    assert len((tmp_path / "store" / "records.jsonl").read_text().splitlines()) == 1
