"""Runs that never lose work: concurrent writers of the results store, run folders kept inside the output
root, and bad config values refused before any work starts."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pnlp_bench.core import store
from pnlp_bench.core.compose import path_component

ROOT = Path(__file__).resolve().parents[1]


def append_many(output_root: str, writer: int, count: int) -> None:
    padding = "x" * 20_000  # well over PIPE_BUF (4 KiB): unlocked appends of this size could interleave
    for index in range(count):
        store.append(output_root, {"status": "finished", "config_hash": f"{writer}-{index}", "code_version": "t",
                                   "writer": writer, "padding": padding})


def test_four_sweeps_writing_the_store_at_once_lose_and_corrupt_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=append_many, args=(str(tmp_path), writer, 150)) for writer in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    lines = store.store_path(tmp_path).read_text().splitlines()
    assert len(lines) == 600
    parsed = [json.loads(line) for line in lines]  # every line whole: none torn or interleaved
    assert {record["config_hash"] for record in parsed} == {f"{w}-{i}" for w in range(4) for i in range(150)}
    assert len(store.finished(tmp_path)) == 600


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("mtop", "mtop"), ("mixer_base", "mixer_base"), ("../../../etc", "______etc"), ("a/b", "a_b"), ("..", "_")],
)
def test_run_folder_names_cannot_climb_out_of_the_output_root(choice, expected):
    assert path_component(choice) == expected
    assert "/" not in path_component(choice) and ".." not in path_component(choice)


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pnlp_bench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path}, timeout=300)


def test_a_relative_config_choice_still_writes_inside_the_output_root(tmp_path):
    root = tmp_path / "deep" / "root"
    done = bench("run", "data=../data/mtop_sample", f"output_root={root}", "trainer=smoke", "trainer.epochs=1",
                 "data.train_limit=40", "data.eval_limit=20", "data.test_limit=20", "model=mixer_xs", "quiet=true",
                 cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written and all(root in path.parents for path in written)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("size.window=-1", "projection.window must be >= 0, got -1"),
        ("data=nosuch", "Could not find 'data/nosuch'"),
        ("trainer.epochs=0", "trainer.epochs must be >= 1, got 0"),
    ],
)
def test_bad_config_values_fail_before_any_work_with_one_clear_message(tmp_path, override, message):
    done = bench("run", "data=mtop_sample", override, f"output_root={tmp_path / 'out'}", cwd=tmp_path)
    assert done.returncode != 0 and message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "out").rglob("*.pt"))  # nothing trained


def test_regenerated_results_do_not_make_the_tree_dirty_but_code_changes_do(tmp_path):
    from pnlp_bench.core.provenance import git_state

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table6.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    (tmp_path / "results" / "table6.md").write_text("regenerated\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path)["dirty"] is True


def test_a_tree_without_git_takes_the_commit_its_sender_wrote(tmp_path, monkeypatch):
    from pnlp_bench.core.provenance import git_state

    monkeypatch.delenv("BENCH_COMMIT", raising=False)
    assert git_state(tmp_path) == {"commit": "unknown", "dirty": None}  # no git folder, nothing sent
    monkeypatch.setenv("BENCH_COMMIT", "0701433abc")
    monkeypatch.setenv("BENCH_DIRTY", "0")
    assert git_state(tmp_path) == {"commit": "0701433abc", "dirty": False}
    monkeypatch.setenv("BENCH_DIRTY", "1")
    assert git_state(tmp_path) == {"commit": "0701433abc", "dirty": True}


def test_one_failing_job_does_not_stop_its_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))  # projection=bert cannot run here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = bench("run", "--multirun", "projection=bert,minhash", "model=mixer_xs", "data=mtop_sample",
                 "data.train_limit=40", "data.eval_limit=20", "data.test_limit=20", "trainer=smoke",
                 "trainer.epochs=1", "quiet=true", f"output_root={tmp_path / 'out'}", cwd=tmp_path)
    assert done.returncode == 1
    assert "1 job(s) of the sweep failed" in done.stderr
    statuses = sorted(record["status"] for record in store.records(tmp_path / "out"))
    assert statuses == ["failed", "finished"]
    (failed,) = [record for record in store.records(tmp_path / "out") if record["status"] == "failed"]
    assert f"{failed['run_dir']}: " in done.stderr  # the summary names the failed job's folder
