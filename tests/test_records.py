"""Results as data: the committed records (results/records.jsonl) render every table on a fresh clone, merge
without conflicts, and `bench reproduce` runs only what is missing, committing each finished cell."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pnlp_bench.core import store
from test_tables import TINY_TABLE, bench

ROOT = Path(__file__).resolve().parents[1]


def record(config_hash: str, date: str, value: float, status: str = "finished") -> dict:
    return {"status": status, "config_hash": config_hash, "code_version": "1", "seed": 0,
            "provenance": {"date": date}, "metrics": {"eval": {"avg": {"accuracy": value}}}}


def test_the_latest_record_of_an_identity_wins_whatever_the_order_of_the_lines(tmp_path):
    lines = [record("a", "2026-11-01T10:00:00", 1.0), record("a", "2026-12-01T10:00:00", 2.0),
             record("b", "2026-10-01T10:00:00", 3.0)]
    for attempt in range(5):
        folder = tmp_path / str(attempt)
        random.Random(attempt).shuffle(lines)
        store.commit(folder / "results", lines)
        latest = store.finished(folder / "outputs", folder / "results")
        assert latest[("a", "1")]["metrics"]["eval"]["avg"]["accuracy"] == 2.0
        assert latest[("b", "1")]["metrics"]["eval"]["avg"]["accuracy"] == 3.0


def test_commit_adds_each_record_once_and_readers_see_both_files(tmp_path):
    results, outputs = tmp_path / "results", tmp_path / "outputs"
    assert store.commit(results, [record("a", "2026-12-01", 1.0)]) == 1
    assert store.commit(results, [record("a", "2026-12-01", 1.0), record("b", "2026-12-01", 2.0)]) == 1
    store.append(outputs, record("c", "2026-12-01", 3.0))
    assert sorted(key for key, _ in store.finished(outputs, results)) == ["a", "b", "c"]
    assert sorted(key for key, _ in store.finished(outputs)) == ["c"]  # without results_dir: the local store only



def test_a_reader_sees_records_appended_or_rewritten_after_it_first_read_the_file(tmp_path):
    """Each file is parsed once per version in a process, so a long `bench reproduce` must still see the runs
    that finish (appends) and a file replaced in place (a merge, a checkout) after its first read."""
    results, outputs = tmp_path / "results", tmp_path / "outputs"
    store.append(outputs, record("a", "2026-12-01", 1.0))
    assert sorted(key for key, _ in store.finished(outputs, results)) == ["a"]
    store.append(outputs, record("b", "2026-12-01", 2.0))
    store.commit(results, [record("c", "2026-12-01", 3.0)])
    assert sorted(key for key, _ in store.finished(outputs, results)) == ["a", "b", "c"]
    path = store.committed_path(results)
    path.write_text(json.dumps(record("d", "2026-12-01", 4.0)) + "\n")  # same size as before, new content
    assert sorted(key for key, _ in store.finished(outputs, results)) == ["a", "b", "d"]

def test_two_branches_that_appended_records_merge_without_conflict(tmp_path):
    """`.gitattributes` merges results/records.jsonl as a union of lines; the latest record still wins."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                              env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                   "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout

    git("init", "-q", "-b", "main")
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    store.commit(repo / "results", [record("base", "2026-11-01", 0.0)])
    git("add", "-A")
    git("commit", "-qm", "base")
    git("checkout", "-qb", "other")
    store.commit(repo / "results", [record("x", "2026-12-02", 2.0)])
    git("commit", "-qam", "other")
    git("checkout", "-q", "main")
    store.commit(repo / "results", [record("x", "2026-12-01", 1.0), record("y", "2026-12-01", 3.0)])
    git("commit", "-qam", "main")
    git("merge", "-q", "--no-edit", "other")  # raises on a conflict
    merged = store.finished(repo / "outputs", repo / "results")
    assert sorted(key for key, _ in merged) == ["base", "x", "y"]
    assert merged[("x", "1")]["metrics"]["eval"]["avg"]["accuracy"] == 2.0  # the later run, on either side


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "table99.yaml").write_text(TINY_TABLE)
    return tmp_path


def test_a_fresh_clone_lists_renders_and_plots_from_the_committed_records(project, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # `bench tables` prints a rich table: no wrapping of its status
    done = bench("table", "99", "--budget", "smoke", cwd=project)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    committed = [json.loads(line) for line in (project / "results" / "records.jsonl").read_text().splitlines()]
    assert len(committed) == 2 and all(line["history"] for line in committed)  # the curves travel with the record
    rendered = {path.name: path.read_bytes() for path in (project / "results").glob("table99.*")}
    assert "table99.tex" in rendered
    shutil.rmtree(project / "outputs")  # a clone: no local store, no run folders
    listing = bench("tables", cwd=project)
    assert listing.returncode == 0 and "done" in listing.stdout and "smoke" in listing.stdout, listing.stdout
    again = bench("table", "99", "--aggregate-only", cwd=project)  # budget auto: the best one with runs
    assert again.returncode == 0, again.stdout + again.stderr
    assert {path.name: path.read_bytes() for path in (project / "results").glob("table99.*")} == rendered
    reported = bench("report", cwd=project)
    assert reported.returncode == 0, reported.stderr[-2000:]
    assert (project / "results" / "curves_table99.png").stat().st_size > 1000
    readme = (project / "results" / "README.md").read_text()
    assert "## Coverage" in readme and "| [99](table99.md) | smoke | 0 / 2 | 2 / 2 | 4 / 4 | 0 / 1 | — | 2 runs, " in readme
    # a table shown at a reduced budget says how far its paper-protocol cells are
    spec = project / "experiments" / "table99.yaml"
    spec.write_text(spec.read_text().replace("budgets:\n", "budgets:\n  paper:\n    description: the protocol\n    overrides: [trainer=smoke, trainer.epochs=2]\n"))
    listing = bench("tables", cwd=project)
    assert "smoke" in listing.stdout and "done · paper: 0/2 runs" in listing.stdout, listing.stdout


def test_aggregate_only_without_any_record_leaves_the_committed_table_as_it_is(project):
    (project / "results").mkdir()
    (project / "results" / "table99.md").write_text("the committed table\n")
    result = bench("table", "99", "--aggregate-only", cwd=project)
    assert result.returncode == 1 and "no finished run" in result.stdout
    assert (project / "results" / "table99.md").read_text() == "the committed table\n"


def test_reproduce_runs_what_is_missing_commits_it_and_then_has_nothing_to_do(project):
    first = bench("run", "data=mtop_sample", "data.train_limit=120", "data.eval_limit=40", "data.test_limit=40",
                  "quiet=true", "trainer=smoke", "trainer.epochs=1", "model=mixer_xs", "seed=0", cwd=project)
    assert first.returncode == 0, first.stderr[-2000:]
    plan = bench("reproduce", "--budget", "smoke", "--tables", "99", "--dry-run", cwd=project)
    assert "1 cell to run" in plan.stdout and "seed 1:" in plan.stdout and "seed 0:" not in plan.stdout, plan.stdout
    assert ", as seed 0 took]" in plan.stdout and "table 99: 1 cell, about " in plan.stdout, plan.stdout  # the estimate
    only_zero = bench("reproduce", "--budget", "smoke", "--tables", "99", "--seeds", "0", "--dry-run", cwd=project)
    assert "0 cells to run" in only_zero.stdout and "seed 1" not in only_zero.stdout, only_zero.stdout
    wrong = bench("reproduce", "--budget", "smoke", "--tables", "99", "--seeds", "zero", "--dry-run", cwd=project)
    assert wrong.returncode == 2 and "--seeds takes seeds separated by commas" in wrong.stderr, wrong.stderr
    result = bench("reproduce", "--budget", "smoke", "--tables", "99", "--hours", "1", "--jobs", "2",
                   "--progress-minutes", "0.0001", cwd=project)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[1/1] table 99 · X-SMALL · seed 1: done in" in result.stdout and "table 99 at smoke: 2/2 runs" in result.stdout
    # where the running cell stands, at once with so short an interval (its first loop sees no epoch yet)
    assert re.search(r"^\.\.\. table 99 · X-SMALL · seed 1: (starting|no epoch finished yet|epoch 1/1[^·]*) · running ",
                     result.stdout, re.MULTILINE), result.stdout
    assert (project / "results" / "table99.md").exists()
    assert len((project / "results" / "records.jsonl").read_text().splitlines()) == 2  # seed 0's record too
    again = bench("reproduce", "--budget", "smoke", "--tables", "99", cwd=project)
    assert "0 cells to run" in again.stdout and "started table" not in again.stdout


def test_reproduce_runs_seed_0_everywhere_then_the_seeds_of_tables_6_and_5_then_the_rest():
    from pnlp_bench.commands.reproduce import Cell, run_order

    names = ["6", "1", "2", "5", "7"]
    cells = [Cell(table, "row", seed, [], (f"{table}-{seed}", "v")) for table in reversed(names) for seed in (2, 1, 0)]
    order = [(cell.table, cell.seed) for cell in run_order(cells, names)]
    assert order[:5] == [("6", 0), ("1", 0), ("2", 0), ("5", 0), ("7", 0)]
    assert order[5:9] == [("6", 1), ("5", 1), ("6", 2), ("5", 2)]
    assert order[9:] == [("1", 1), ("2", 1), ("7", 1), ("1", 2), ("2", 2), ("7", 2)]


def test_the_dry_run_estimates_a_cell_from_its_own_epochs_else_from_another_seed(tmp_path):
    import torch

    from pnlp_bench.commands.reproduce import Cell, estimate, plan_lines, without_threads
    from pnlp_bench.core.provenance import device_name

    folder = tmp_path / "runs" / "mtop" / "mixer_xs-abc"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("trainer:\n  epochs: 10\n")
    # epochs 1-2 took 60 s (one thread, say), 3-5 took 30 s after a resume with two: the pace is the last epochs'
    (folder / "history.jsonl").write_text("".join(json.dumps({"epoch": epoch, "train_seconds": 25.0 if epoch > 2 else 50.0,
                                                              "eval_seconds": 5.0 if epoch > 2 else 10.0}) + "\n"
                                                  for epoch in (5, 1, 2, 3, 4)))
    stopped = Cell("3", "w 0", 0, [], ("abc", "1"))
    assert estimate(stopped, tmp_path) == (150.0, "resumes at epoch 5/10, about 2 min left")  # 5 epochs of 30 s
    sibling = {"seed": 0, "wall_seconds": 600.0, "resumed_from_epoch": 2,
               "history": [{"epoch": epoch, "train_seconds": 100.0} for epoch in range(1, 5)],
               "provenance": {"device": without_threads(device_name(torch.device("cpu"))) + " (7 threads)"}}  # this machine
    other_seed = Cell("3", "w 0", 1, [], ("def", "1"), sibling=sibling, sibling_is="seed 0")
    assert estimate(other_seed, tmp_path) == (800.0, "about 13 min, as seed 0 took")  # both of its processes
    elsewhere = Cell("3", "w 0", 2, [], ("def", "1"), sibling={**sibling, "provenance": {"device": "CPU: Other (1 threads)"}},
                     sibling_is="seed 0")
    assert estimate(elsewhere, tmp_path) == (800.0, "about 13 min, as seed 0 took on CPU: Other (1 threads)")
    never = Cell("3", "w 2", 0, [], ("ghi", "1"))
    assert estimate(never, tmp_path) == (
        None, "no estimate: no row of this table has run on this data, or this row ran nowhere beside one that did")
    lines = plan_lines([stopped, other_seed, never], tmp_path, jobs=2)
    assert lines[-2] == "table 3: 3 cells, about 16 min of one job for 2 cells with an estimate; 1 without one"
    assert lines[-1].startswith("in all: about 16 min of one job for 2 cells with an estimate; 1 without one; "
                                "at --jobs 2, about 8 min of wall time")  # 150 + 800 s


def test_the_progress_line_of_a_running_cell_reads_its_run_folder(tmp_path):
    from pnlp_bench.commands.reproduce import Cell, progress

    cell = Cell("4", "F 2048", 0, [], ("abc", "1"))
    assert progress(cell, tmp_path) == "starting"
    folder = tmp_path / "runs" / "mtop" / "mixer_base-abc"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("trainer:\n  epochs: 80\n")
    (folder / "history.jsonl").write_text("")
    assert progress(cell, tmp_path) == "no epoch finished yet"
    (folder / "history.jsonl").write_text("".join(json.dumps({"epoch": epoch, "train_seconds": 70.0, "eval_seconds": 10.0})
                                                  + "\n" for epoch in range(1, 5)))
    assert progress(cell, tmp_path) == "epoch 4/80, about 1.7 h left"  # 76 epochs of 80 s


def test_the_eta_adds_the_estimates_of_the_cells_left_and_the_mean_finished_wall_for_the_others(tmp_path):
    """Cells of a table differ by hours (Table 5's X-SMALL against its X-LARGE): the ETA reads each cell's
    estimate, not the mean of the cells that happened to finish first."""
    from pnlp_bench.commands.reproduce import Cell, time_to_go

    known = [Cell("5", row, 0, [], (row, "1"), sibling={"wall_seconds": 3600.0 * hours}, sibling_is="seed 1")
             for row, hours in (("small", 1), ("big", 19))]
    never = Cell("5", "new", 0, [], ("new", "1"))
    assert time_to_go([], tmp_path, 1, [60.0]) == "—"
    assert time_to_go(known, tmp_path, 2, [60.0]) == "10:00:00"  # (1 h + 19 h) over two jobs
    assert time_to_go([*known, never], tmp_path, 2, [1800.0]) == "10:15:00"  # the unknown one at the mean wall
    assert time_to_go([*known, never], tmp_path, 1, []) == "20:00:00 and 1 cell without an estimate"
    assert time_to_go([never], tmp_path, 1, []) == "—"


def test_an_estimate_reads_the_same_row_on_the_same_data_never_another_column_s(project, monkeypatch):
    """Table 7's rows run IMDB and ten Hyperpartisan folds: a fold estimates from another fold of the row (the
    same fold at another seed first), IMDB only from IMDB. (A Hyperpartisan fold once stood in for IMDB.)"""
    from pnlp_bench.commands import table as tables
    from pnlp_bench.commands.reproduce import plan_cells, this_machine
    from pnlp_bench.core.registry import ConfigError

    spec = TINY_TABLE.replace("  - {name: intent, metric: intent_accuracy, split: test, language: avg}",
                              "  - {name: folds, metric: intent_accuracy, split: test, language: avg, "
                              "folds: {key: trainer.batch_size, values: [16, 32, 64]}}")
    (project / "experiments" / "table99.yaml").write_text(spec)
    monkeypatch.chdir(project)
    cells, _ = tables.plan(tables.load_spec("99"), "smoke", project / "outputs")
    by_key = {(group[-1] if group else "plain", seed): identity for _, group, seed, _, identity in cells}
    assert sorted(by_key) == [("plain", 0), ("plain", 1), *[(f"trainer.batch_size={n}", seed) for n in (16, 32, 64) for seed in (0, 1)]]
    # done: fold 16 at seeds 0 and 1, fold 32 at seed 0; the plain column at none
    done = [("trainer.batch_size=16", 0, 100.0), ("trainer.batch_size=16", 1, 200.0), ("trainer.batch_size=32", 0, 300.0)]
    here = {"device": this_machine() + " (4 threads)"}  # fold 16 at seed 1 ran on this machine, the others elsewhere
    store.commit(project / "results", [{**record(by_key[(key, seed)][0], "2026-12-01", 1.0), "seed": seed,
                                        "code_version": by_key[(key, seed)][1], "wall_seconds": seconds,
                                        "provenance": {"date": "2026-12-01", **(here if seconds == 200.0 else {})}}
                                       for key, seed, seconds in done])
    fold_of = lambda cell: next((o for o in cell.overrides if o.startswith("trainer.batch_size=")), "plain")  # noqa: E731
    plan = {(fold_of(cell), cell.seed): cell
            for cell in plan_cells(["99"], "smoke", project / "outputs", project / "results", False, say=lambda _: None)}
    assert sorted(plan) == [("plain", 0), ("plain", 1), ("trainer.batch_size=32", 1), ("trainer.batch_size=64", 0),
                            ("trainer.batch_size=64", 1)]
    fold = plan[("trainer.batch_size=32", 1)]
    assert fold.sibling["wall_seconds"] == 300.0 and fold.sibling_is == "seed 0"  # its own fold first
    for seed in (0, 1):  # a fold never run: another fold of the row, one measured on this machine first
        assert plan[("trainer.batch_size=64", seed)].sibling_is == "fold 16 at seed 1"
    assert plan[("plain", 0)].sibling is None and plan[("plain", 1)].sibling is None  # never a fold of the other column
    # --only: the cells whose command holds every override given; one no cell has is an error, not "nothing to run"
    only = plan_cells(["99"], "smoke", project / "outputs", project / "results", False, say=lambda _: None,
                      only=["trainer.batch_size=64", "seed=1"])
    assert [(fold_of(cell), cell.seed) for cell in only] == [("trainer.batch_size=64", 1)]
    with pytest.raises(ConfigError, match=r"--only 'trainer.batch_size=65': no cell of table\(s\) 99 at budget 'smoke'"):
        plan_cells(["99"], "smoke", project / "outputs", project / "results", False, say=lambda _: None,
                   only=["trainer.batch_size=65"])


def test_a_row_never_run_on_its_data_is_estimated_from_another_row_scaled_by_their_pace_elsewhere(project, monkeypatch):
    """Table 6's X-LARGE never ran on multiATIS at any budget, but BASE did, and both ran on MTOP in Table 5:
    BASE's pace on multiATIS times X-LARGE's pace over BASE's on MTOP is a rough estimate (table 98 plays
    Table 5 here); without such a pair there is none."""
    from pnlp_bench.commands import table as tables
    from pnlp_bench.commands.reproduce import estimate, plan_cells, train_pace

    with_base = TINY_TABLE + "  - name: BASE\n    overrides: [model=mixer_base]\n"
    (project / "experiments" / "table99.yaml").write_text(with_base)
    (project / "experiments" / "table98.yaml").write_text(
        with_base.replace("table: 99", "table: 98").replace("data.train_limit=120", "data.train_limit=60"))
    monkeypatch.chdir(project)

    def identities(name: str) -> dict:
        cells, _ = tables.plan(tables.load_spec(name), "smoke", project / "outputs")
        return {(row.name, seed): identity for row, _, seed, _, identity in cells}

    def run(identity: tuple, train_seconds: float, device: str = "CPU: Some (1 threads)") -> dict:
        return {**record(identity[0], "2026-12-01", 1.0), "code_version": identity[1], "wall_seconds": 1.0,
                "data_report": {"train": 100, "eval": 10}, "provenance": {"date": "2026-12-01", "device": device},
                "history": [{"epoch": 1, "train_seconds": train_seconds, "eval_seconds": 2.0}]}

    ours, elsewhere = identities("99"), identities("98")
    store.commit(project / "results", [run(ours[("BASE", 0)], 50.0)])
    plan = lambda: plan_cells(["99"], "smoke", project / "outputs", project / "results", False, say=lambda _: None)  # noqa: E731
    never = [cell for cell in plan() if cell.row == "X-SMALL"]
    assert [cell.seed for cell in never] == [0, 1] and all(cell.paced_by is None for cell in never)
    assert estimate(never[0], project / "outputs") == (
        None, "no estimate: no row of this table has run on this data, or this row ran nowhere beside one that did")
    # both rows ran in table 98: X-SMALL at a third of BASE's pace there (per training example)
    store.commit(project / "results", [run(elsewhere[("X-SMALL", 0)], 10.0), run(elsewhere[("BASE", 0)], 30.0)])
    assert train_pace(run(elsewhere[("X-SMALL", 0)], 10.0)) == 0.1
    # a record of the local store carries no history: its run folder's metrics.json has it
    folder = project / "outputs" / "runs" / "x-small"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"history": [{"epoch": 1, "train_seconds": 10.0}]}))
    local = {key: value for key, value in run(elsewhere[("X-SMALL", 0)], 10.0).items() if key != "history"}
    assert train_pace({**local, "run_dir": str(folder)}) == 0.1 and train_pace(local) is None
    cells = [cell for cell in plan() if cell.row == "X-SMALL"]
    assert [(cell.paced_row, cell.scaled_from, cell.epochs) for cell in cells] == [("BASE", "table 98 at budget 'smoke'", 1)] * 2
    seconds, how = estimate(cells[0], project / "outputs")
    assert seconds == pytest.approx((50.0 + 2.0) / 3)  # BASE's epoch here (train and eval), a third of it
    assert how.startswith("roughly 17 s: 1 epochs of the whole data at the pace of BASE's 'smoke' budget run on this "
                          "data on CPU: Some (1 threads), times 0.33 (this row's pace over BASE's in table 98 at budget 'smoke')")
    # how rough: once X-SMALL has run here too, each row of table 99 is estimated as if it had not
    from pnlp_bench.commands.reproduce import estimate_check
    assert estimate_check(["99"], "smoke", project / "outputs", project / "results") == []  # no second row here yet
    store.commit(project / "results", [{**run(ours[("X-SMALL", 0)], 20.0), "wall_seconds": 60.0}])
    assert estimate_check(["99"], "smoke", project / "outputs", project / "results") == [  # BASE's run took 1 s
        "table 99 · BASE on its data: measured 1 s; from X-SMALL ('smoke' budget) x 3.00 (table 98 at 'smoke'): 1 min, 66.00x",
        "table 99 · X-SMALL on its data: measured 1 min; from BASE ('smoke' budget) x 0.33 (table 98 at 'smoke'): 17 s, 0.29x",
    ]


def test_a_row_never_run_at_this_budget_is_estimated_from_its_pace_at_another_budget(project, monkeypatch):
    """Nothing of Table 5's rows has run at the paper's protocol, but each ran at the cpu budget (3 epochs on
    1,500 utterances per language): its seconds per example, scaled to 80 epochs of the whole splits, give a
    rough estimate, so --fit leaves out a cell of hours instead of starting it."""
    from pnlp_bench.commands import table as tables
    from pnlp_bench.commands.reproduce import estimate, paced_seconds, plan_cells, split_counts

    # the loader counts whole splits (per language, or one count), then the budget keeps a per-language limit
    report = {"en/train": 1000, "de/train": 3000, "train_limit_per_language": 500, "en/eval": 100, "de/eval": 200,
              "eval_limit_per_language": 50, "labels_unseen_in_train": {"train": 0}}
    assert split_counts(report, "train") == (4000, 1000) and split_counts(report, "eval") == (300, 100)
    assert split_counts({"train": 515, "train_limit_per_language": 2000}, "train") == (515, 515)
    history = [{"epoch": epoch, "train_seconds": 10.0, "eval_seconds": 1.0} for epoch in (1, 2)]
    assert paced_seconds({"data_report": report, "history": history}, 80) == 80 * (10.0 * 4 + 1.0 * 3)
    assert paced_seconds({"data_report": {}, "history": history}, 80) is None  # no counts: no pace

    spec = project / "experiments" / "table99.yaml"
    spec.write_text(spec.read_text().replace("budgets:\n", "budgets:\n  paper:\n    description: the protocol\n"
                                                            "    overrides: [trainer=smoke, trainer.epochs=40]\n"))
    monkeypatch.chdir(project)
    smoke, _ = tables.plan(tables.load_spec("99"), "smoke", project / "outputs")
    seed_0 = next(identity for _, _, seed, _, identity in smoke if seed == 0)
    store.commit(project / "results", [{**record(seed_0[0], "2026-12-01", 1.0), "code_version": seed_0[1],
                                        "data_report": report, "history": history}])
    cells = plan_cells(["99"], "paper", project / "outputs", project / "results", False, say=lambda _: None)
    assert [(cell.seed, cell.paced_budget, cell.epochs) for cell in cells] == [(0, "smoke", 40), (1, "smoke", 40)]
    seconds, how = estimate(cells[0], project / "outputs")
    assert seconds == 40 * 43.0 and how.startswith("roughly 29 min: 40 epochs of the whole data at the pace of its 'smoke' budget's run")
    result = bench("reproduce", "--budget", "paper", "--tables", "99", "--hours", "0.2", "--fit", cwd=project)
    assert result.stdout.rstrip().endswith("0 finished, 0 failed, 0 not started, 2 left out by --fit"), result.stdout
    # a run of the row at this budget is the better estimate: seed 1 reads seed 0's compute, not the pace
    paper, _ = tables.plan(tables.load_spec("99"), "paper", project / "outputs")
    paper_0 = next(identity for _, _, seed, _, identity in paper if seed == 0)
    store.commit(project / "results", [{**record(paper_0[0], "2026-12-02", 1.0), "code_version": paper_0[1],
                                        "wall_seconds": 120.0}])
    [cell] = plan_cells(["99"], "paper", project / "outputs", project / "results", False, say=lambda _: None)
    assert estimate(cell, project / "outputs") == (120.0, "about 2 min, as seed 0 took")


def test_reproduce_fit_leaves_out_a_cell_whose_estimate_outlasts_the_hours(project, monkeypatch):
    """--fit: where a stopped run's folder will not outlive the job, a cell that cannot finish is not started."""
    from pnlp_bench.commands import table as tables

    monkeypatch.chdir(project)
    cells, _ = tables.plan(tables.load_spec("99"), "smoke", project / "outputs")
    seed_0 = next(identity for _, _, seed, _, identity in cells if seed == 0)
    store.commit(project / "results", [{**record(seed_0[0], "2026-12-01", 1.0), "code_version": seed_0[1],
                                        "wall_seconds": 36000.0}])  # seed 0 took 10 h
    result = bench("reproduce", "--budget", "smoke", "--tables", "99", "--hours", "1", "--fit", cwd=project)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "left out table 99 · X-SMALL · seed 1: about 10.0 h, as seed 0 took" in result.stdout, result.stdout
    assert "more than the 60 min left (--fit)" in result.stdout and "started table" not in result.stdout
    assert result.stdout.rstrip().endswith("0 finished, 0 failed, 0 not started, 1 left out by --fit")


def test_reproduce_leaves_out_a_cell_that_failed_until_asked(project):
    spec = (project / "experiments" / "table99.yaml").read_text().replace("seeds: [0, 1]", "seeds: [0]")
    (project / "experiments" / "table99.yaml").write_text(spec.replace("model=mixer_xs", "model=mixer_xs, data.root=/nonexistent/mtop"))
    failed = bench("reproduce", "--budget", "smoke", "--tables", "99", cwd=project)
    assert failed.returncode == 1 and "failed (exit" in failed.stdout, failed.stdout
    again = bench("reproduce", "--budget", "smoke", "--tables", "99", "--dry-run", cwd=project)
    assert "failed before" in again.stdout and "0 cells to run" in again.stdout
    retry = bench("reproduce", "--budget", "smoke", "--tables", "99", "--dry-run", "--retry-failed", cwd=project)
    assert "1 cell to run" in retry.stdout


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has died; only its exit status waits to be read


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the runs die with their parent on Linux (prctl)")
def test_killing_reproduce_stops_its_runs_and_a_new_one_goes_on(project):
    spec = (project / "experiments" / "table99.yaml").read_text().replace("seeds: [0, 1]", "seeds: [0]")
    (project / "experiments" / "table99.yaml").write_text(spec.replace("trainer.epochs=1", "trainer.epochs=400"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "BENCH_OUTPUT_ROOT": str(project / "outputs")}
    parent = subprocess.Popen([sys.executable, "-m", "pnlp_bench.cli", "reproduce", "--budget", "smoke", "--tables", "99"],
                              cwd=project, env=env, stdout=subprocess.PIPE, text=True)
    line = ""
    while "started" not in line:
        line = parent.stdout.readline()
        assert line, "reproduce ended before starting its cell"
    child = int(line.split("(pid ")[1].split(",")[0])
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):  # the run dies with its parent (it would otherwise hold its run folder's lock)
        if not alive(child):
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the run outlived the killed bench reproduce")
    plan = bench("reproduce", "--budget", "smoke", "--tables", "99", "--dry-run", cwd=project)
    assert "1 cell to run" in plan.stdout  # not recorded as failed: the next reproduce runs it


FOLDS_TABLE = """
table: 98
title: folds
requires: []
base: [data=mtop_sample]
seeds: [0]
budgets:
  full: {overrides: []}
  one: {overrides: [], folds: [0.0]}
columns:
  - {name: EM, metric: exact_match, split: test, language: avg,
     folds: {key: bottleneck.word_dropout, values: [0.0, 0.1, 0.2]}}
rows:
  - {name: BASE, overrides: [model=mixer_base], paper: {EM: 60.0}}
"""


def test_a_cross_validated_column_runs_one_cell_per_fold_and_reports_their_mean(tmp_path, monkeypatch):
    from pnlp_bench.commands import table as tables

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "table98.yaml").write_text(FOLDS_TABLE)
    monkeypatch.chdir(tmp_path)
    spec = tables.load_spec("98")
    assert len(spec.cells("full")) == 3 and len(spec.cells("one")) == 1
    cells, _ = tables.plan(spec, "full", tmp_path / "outputs")
    assert len({identity for *_, identity in cells}) == 3  # each fold is its own run
    for value, (*_, (config_hash, version)) in zip((50.0, 60.0, 70.0), cells):
        store.append(tmp_path / "outputs", {"status": "finished", "config_hash": config_hash, "code_version": version,
                                            "seed": 0, "epochs": 1, "budget": "b", "parameters": {"total": 1},
                                            "provenance": {"device": "cpu", "commit": "c" * 10, "date": "2026-12-01"},
                                            "metrics": {"test": {"avg": {"exact_match": value}}}})
    (cell,) = tables.aggregate(spec, "full", tmp_path / "outputs")
    assert cell["ours_mean"] == pytest.approx(60.0) and cell["ours_std"] == pytest.approx(10.0) and cell["seeds"] == [0]
    assert tables.coverage(spec, "full", tmp_path / "outputs") == (3, 3)


def test_a_cross_validated_mean_over_some_folds_says_how_many(tmp_path, monkeypatch):
    from pnlp_bench.commands import table as tables
    from pnlp_bench.commands.table_files import cell_text

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "table98.yaml").write_text(FOLDS_TABLE)
    monkeypatch.chdir(tmp_path)
    spec = tables.load_spec("98")
    cells, _ = tables.plan(spec, "full", tmp_path / "outputs")
    for value, (*_, (config_hash, version)) in zip((50.0, 70.0), cells):  # two of the three folds finished
        store.append(tmp_path / "outputs", {"status": "finished", "config_hash": config_hash, "code_version": version,
                                            "seed": 0, "epochs": 1, "budget": "b", "parameters": {"total": 1},
                                            "provenance": {"device": "cpu", "commit": "c" * 10, "date": "2026-12-01"},
                                            "metrics": {"test": {"avg": {"exact_match": value}}}})
    (cell,) = tables.aggregate(spec, "full", tmp_path / "outputs")
    assert (cell["folds_run"], cell["folds_planned"]) == (2, 3)
    assert cell_text(cell).startswith("60.0 ± 14.1 (2 of 3 folds) / 60.0")
    (one,) = tables.aggregate(spec, "one", tmp_path / "outputs")  # the budget's only fold is done: nothing added
    assert (one["folds_run"], one["folds_planned"]) == (1, 1) and "folds" not in cell_text(one)


def test_a_single_run_cell_says_n_1_rather_than_a_spread_of_zero():
    from pnlp_bench.commands import table as tables
    from pnlp_bench.commands.table_files import fmt

    assert tables.summarise([95.3]) == (95.3, None)
    assert fmt(*tables.summarise([95.3])) == "95.3 (n=1)"
    assert fmt(*tables.summarise([1.0, 3.0])) == "2.0 ± 1.4"


def committed_tables() -> list[str]:
    from pnlp_bench.commands import table as tables

    return [tables.table_name(path) for path in tables.spec_files()]


@pytest.mark.parametrize("name", committed_tables())
def test_every_committed_table_renders_again_from_the_committed_records_alone(name, tmp_path, monkeypatch):
    """What a fresh clone gets from `bench table N --aggregate-only`: the committed files (.md, .tex, .csv, .json),
    byte for byte."""
    from pnlp_bench.commands import table as tables

    monkeypatch.chdir(ROOT)
    spec = tables.load_spec(name)
    budget = tables.best_budget(spec, tmp_path / "no-local-store", ROOT / "results")
    if budget is None:
        pytest.skip(f"no committed record behind results/{spec.stem}.* (rendered before records were committed)")
    cells = tables.aggregate(spec, budget, tmp_path / "no-local-store", ROOT / "results")
    rendered = tables.write_results(spec, budget, cells, tmp_path / "results", records_dir=ROOT / "results")
    assert {path.suffix for path in rendered} == {".md", ".tex", ".csv", ".json"}  # the LaTeX table too
    for path in rendered:
        committed = ROOT / "results" / path.name
        assert path.read_bytes() == committed.read_bytes(), f"results/{path.name} differs from its committed records' rendering"


@pytest.mark.parametrize("command", [("table", "99", "--budget", "smoke"), ("reproduce", "--budget", "smoke", "--tables", "99")])
def test_an_unknown_option_is_refused_before_anything_runs(project, command):
    result = bench(*command, "--dryrun", cwd=project)
    assert result.returncode == 2
    assert "unrecognized option '--dryrun'" in result.stderr
    assert not (project / "outputs").exists() and not (project / "results").exists()  # nothing launched or written


def test_bench_table_dry_run_lists_what_it_would_launch_and_runs_nothing(project):
    spec = project / "experiments" / "table99.yaml"
    spec.write_text(spec.read_text().replace("overrides: [model=mixer_xs]", 'overrides: [model=mixer_xs, "data.languages=[en]"]'))
    planned = bench("table", "99", "--budget", "smoke", "--dry-run", cwd=project)
    assert planned.returncode == 0, planned.stderr
    lines = [line for line in planned.stdout.splitlines() if "bench run" in line]
    assert len(lines) == 2 and "2 runs to launch at budget 'smoke'" in planned.stdout
    assert all("data.languages=[en] " in line for line in lines)  # as bench run takes it, not eaten as a style tag
    assert not (project / "outputs").exists() and not (project / "results").exists()
    assert bench("table", "99", "--budget", "smoke", cwd=project).returncode == 0
    again = bench("table", "99", "--budget", "smoke", "--dry-run", cwd=project)
    assert "0 runs to launch" in again.stdout and "bench run" not in again.stdout


def test_coverage_counts_every_cell_seed_and_paper_number():
    from pnlp_bench.commands import report

    def cell(precision, paper, ours, label, seeds, run_dir=""):
        return {"precision": precision, "paper": paper, "ours_mean": ours, "difference": None if None in (paper, ours)
                else ours - paper, "budget_label": [label] if label else [], "seeds": seeds, "seeds_planned": [0, 1, 2],
                "run_dirs": [run_dir] if run_dir else []}

    table = {"table": "6", "budget": "paper", "cells": [
        cell("fp32", 90.0, 88.0, "80 epochs, paper protocol", [0], "a"),
        cell("int8", 90.0, 87.5, "80 epochs, paper protocol", [0], "a"),
        cell("fp32", None, 95.0, "80 epochs, paper protocol", [0, 1], "b"),
        cell("fp32", 80.0, 70.0, "3 epochs, reduced budget, not the paper protocol", [0], "c"),
        cell("fp32", 70.0, None, "", [])]}
    line = report.coverage_row(table, {"a": 3600.0, "b": 1800.0})
    # 3 of 5 cells at the protocol (the reduced one does not count), 4 run; 5 of 15 seed runs; of the 3 fp32 paper
    # numbers 1 is compared at the protocol (|88 - 90| = 2.0): the int8 cell and the reduced budget are left out
    assert line == "| [6](table6.md) | paper | 3 / 5 | 4 / 5 | 5 / 15 | 1 / 3 | 2.0 | 3 runs, 1.5 h |"


def test_compute_counts_every_process_of_a_resumed_run():
    from pnlp_bench.core.record import compute_seconds

    history = [{"epoch": epoch, "train_seconds": 10.0, "eval_seconds": 1.0, "checkpoint_seconds": 0.5,
                "gather_seconds": 0.5} for epoch in range(1, 6)]
    # epochs 1-3 ran in an earlier process (12 s each); the last process took 30 s for epochs 4-5 and the test split
    assert compute_seconds({"wall_seconds": 30.0, "resumed_from_epoch": 3, "history": history}) == 66.0
    assert compute_seconds({"wall_seconds": 30.0, "resumed_from_epoch": None, "history": history}) == 30.0
    assert compute_seconds({"wall_seconds": 30.0}) == 30.0
