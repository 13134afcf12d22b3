"""`bench run` when the disk fills up: one line, no traceback, no temporary file left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "data=mtop_sample", "trainer=smoke", "model=mixer_xs", "data.train_limit=40", "data.eval_limit=20",
       "data.test_limit=20", "quiet=true"]  # trainer=smoke: 2 epochs

# `bench` with torch.save failing as a full disk does, for every write of best.pt (after a few bytes).
FULL_DISK = """
import errno, os, sys, torch
real_save = torch.save
def save(obj, handle, *args, **kwargs):
    if "best.pt" in str(getattr(handle, "name", handle)):
        handle.write(b"PK half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_save(obj, handle, *args, **kwargs)
torch.save = save
from pnlp_bench.cli import main
sys.argv = ["bench", *sys.argv[1:]]
main()
"""


def environment(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "BENCH_CACHE_DIR": os.environ["BENCH_CACHE_DIR"]}


def bench(*args: str, cwd: Path, script: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, *(script or ["-m", "pnlp_bench.cli"]), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment(cwd), timeout=300)


def run_folder(output_root: Path) -> Path:
    (folder,) = output_root.glob("runs/mtop_sample/mixer_xs-*")
    return folder


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def test_a_full_disk_while_saving_a_checkpoint_ends_in_one_line_and_leaves_no_temporary(tmp_path):
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    done = bench(*RUN, f"output_root={tmp_path / 'outputs'}", cwd=tmp_path, script=[str(script)])
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    folder = run_folder(tmp_path / "outputs")
    assert error_lines(done) == [f"error: cannot write {folder / 'best.pt'}: No space left on device"]
    assert [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")] == []
    assert not (folder / "best.pt").exists()
    assert json.loads((folder / "metrics.json").read_text())["status"] == "failed"
