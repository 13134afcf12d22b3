"""`bench run` and `bench predict` end to end, on the parts of the run contract a user meets when things go
wrong or when nobody watches: a full disk, a damaged checkpoint, a second launch into a busy folder, and
the per-epoch lines in `run.log` and `history.jsonl`."""

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


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output root of one finished tiny run (two epochs), trained once for the tests below."""
    root = tmp_path_factory.mktemp("finished")
    done = bench(*RUN, f"output_root={root / 'outputs'}", cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "outputs"


def copy_of(finished: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished, tmp_path / "outputs")
    return tmp_path / "outputs"


def test_run_log_and_history_jsonl_have_one_line_per_epoch(finished):
    folder = run_folder(finished)
    epoch_lines = [line for line in (folder / "run.log").read_text().splitlines() if "[pnlp_bench.train]" in line]
    assert len(epoch_lines) == 2
    for number, line in enumerate(epoch_lines, 1):
        assert f"epoch {number}/2: train loss " in line and "eval exact_match " in line and "samples/s" in line
        assert "elapsed " in line and "ETA " in line
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    record = json.loads((folder / "metrics.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert history == record["history"]  # the same rows, every field the record keeps (checkpoint_seconds too)


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


def test_predict_on_a_truncated_best_checkpoint_says_it_is_damaged_in_one_line(finished, tmp_path):
    folder = run_folder(copy_of(finished, tmp_path))
    best = folder / "best.pt"
    best.write_bytes(best.read_bytes()[:4096])
    done = bench("predict", str(folder), "wake me up at seven", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = error_lines(done)
    assert line.startswith(f"error: {best} is damaged, it cannot be read (RuntimeError: PytorchStreamReader")
    assert f"remove {folder} and repeat its bench run" in line


def test_resuming_from_a_damaged_last_checkpoint_stops_keeping_it_then_starts_over_once_it_is_moved(finished, tmp_path):
    output_root = copy_of(finished, tmp_path)
    folder = run_folder(output_root)
    (folder / "metrics.json").unlink()  # an interrupted run, as far as a new launch can tell
    last = folder / "last.pt"
    damaged = last.read_bytes()[:-200]
    last.write_bytes(damaged)
    best = (folder / "best.pt").read_bytes()
    done = bench(*RUN, f"output_root={output_root}", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = error_lines(done)
    assert line.startswith(f"error: {last} is damaged") and "move it aside (or delete it) and run again" in line
    assert last.read_bytes() == damaged and (folder / "best.pt").read_bytes() == best  # nothing overwritten
    last.rename(folder / "last.pt.damaged")  # as the line says
    again = bench(*RUN, f"output_root={output_root}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    record = json.loads((folder / "metrics.json").read_text())
    assert record["status"] == "finished" and record["resumed_from_epoch"] is None


HOLDER = """
import sys
from pathlib import Path
from pnlp_bench.core.run_lock import hold_run_folder
with hold_run_folder(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_launch_into_a_busy_run_folder_is_refused_in_one_line_and_trains_nothing(tmp_path):
    folder = tmp_path / "outputs" / "runs" / "busy"
    overrides = [*RUN, f"output_root={tmp_path / 'outputs'}", f"hydra.run.dir={folder}"]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=environment(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "held"
        done = bench(*overrides, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        (line,) = error_lines(done)
        assert line.startswith(f"error: {folder} is in use by pid {holder.pid} on ")
        assert "not training a second run into the same folder" in line
        assert not list(folder.glob("*.pt")) and not (folder / "metrics.json").exists()
        assert not (tmp_path / "outputs" / "store").exists()  # no `failed` record for a cell that is running
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing anything by hand: its lock is gone with it.
    again = bench(*overrides, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((folder / "metrics.json").read_text())["status"] == "finished"
    assert not (folder / ".run.holder").exists()
