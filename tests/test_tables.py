"""`bench table` end to end on a tiny table over the embedded sample: launch, skip finished cells, render."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pnlp_bench.commands import table as tables
from pnlp_bench.core import store

ROOT = Path(__file__).resolve().parents[1]

TINY_TABLE = """
table: 99
title: tiny smoke table
paper_source: "none (a test)"
requires: []
base: [data=mtop_sample, data.train_limit=120, data.eval_limit=40, data.test_limit=40, quiet=true]
seeds: [0, 1]
budgets:
  smoke:
    description: "a smoke budget"
    overrides: [trainer=smoke, trainer.epochs=1]
columns:
  - {name: EM, metric: exact_match, split: eval, language: en}
  - {name: intent, metric: intent_accuracy, split: test, language: avg}
rows:
  - name: X-SMALL
    overrides: [model=mixer_xs]
    paper: {EM: {value: 76.9, source: "[made up for the test]"}}
"""


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "BENCH_OUTPUT_ROOT": str(cwd / "outputs")}
    return subprocess.run(
        [sys.executable, "-m", "pnlp_bench.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "table99.yaml").write_text(TINY_TABLE)
    return tmp_path


def store_lines(project: Path) -> int:
    return sum(1 for _ in store.records(project / "outputs"))


def test_table_runs_missing_cells_only_and_renders_results(project):
    # One seed finished earlier (as if a sweep had been killed after it): the table runs only the other.
    first = bench("run", "data=mtop_sample", "data.train_limit=120", "data.eval_limit=40", "data.test_limit=40",
                  "quiet=true", "trainer=smoke", "trainer.epochs=1", "model=mixer_xs", "seed=0", cwd=project)
    assert first.returncode == 0, first.stderr[-2000:]
    assert store_lines(project) == 1
    done = bench("table", "99", "--budget", "smoke", cwd=project)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "seeds [1]" in done.stdout
    assert store_lines(project) == 2
    payload = json.loads((project / "results" / "table99.json").read_text())
    em = next(cell for cell in payload["cells"] if cell["column"] == "EM")
    assert em["seeds"] == [0, 1] and em["paper"] == 76.9
    assert em["difference"] == pytest.approx(em["ours_mean"] - 76.9)
    assert em["hardware"] and em["commits"] and em["epochs"] == [1]
    assert em["trained_in"] in (["fp32"], ["bf16 autocast"])  # precision=auto, resolved on this machine
    markdown = (project / "results" / "table99.md").read_text()
    assert "| hardware | trained in | commit |" in markdown and f"| {em['trained_in'][0]} |" in markdown
    assert "X-SMALL" in markdown and "76.9 [made up for the test]" in markdown and "a smoke budget" in markdown
    assert (project / "results" / "table99.csv").read_text().count("\n") == 3
    # Everything finished: a re-run launches nothing.
    again = bench("table", "99", "--budget", "smoke", cwd=project)
    assert again.returncode == 0 and "seeds" not in again.stdout
    assert store_lines(project) == 2
    listing = bench("tables", "--budget", "smoke", cwd=project)
    assert "done" in listing.stdout
    reported = bench("report", cwd=project)
    assert reported.returncode == 0, reported.stderr[-2000:]
    readme = (project / "results" / "README.md").read_text()
    assert "[99](table99.md)" in readme and "curves_table99.png" in readme
    assert (project / "results" / "curves_table99.png").stat().st_size > 1000


def test_rehash_rekeys_a_finished_run_from_its_own_config(tmp_path):
    from omegaconf import OmegaConf

    run_dir = tmp_path / "runs" / "cell"
    run_dir.mkdir(parents=True)
    config = {"seed": 0, "trainer": {"epochs": 3, "eval_max_positions": 4096}}
    OmegaConf.save(OmegaConf.create(config), run_dir / "config.yaml")
    record = {"status": "finished", "config_hash": "old-rule", "code_version": store.code_version(),
              "run_dir": str(run_dir), "metrics": {"test": {"avg": {"accuracy": 90.0}}}}
    store.append(tmp_path, record)
    assert store.rehash(tmp_path) == 1
    assert store.rehash(tmp_path) == 0  # idempotent
    rekeyed = store.finished(tmp_path)[(store.config_hash(config), store.code_version())]
    assert rekeyed["rehashed_from"] == "old-rule" and rekeyed["metrics"] == record["metrics"]


def test_store_survives_a_torn_last_line(tmp_path):
    store.append(tmp_path, {"status": "finished", "config_hash": "a", "code_version": "1"})
    with open(store.store_path(tmp_path), "a") as handle:
        handle.write('{"status": "finished", "config_ha')  # a writer killed mid-line
    assert list(store.finished(tmp_path)) == [("a", "1")]


def test_config_hash_ignores_volatile_keys_only():
    base = {"seed": 0, "quiet": False, "trainer": {"epochs": 3, "device": "cpu"}, "data": {"root": "/x"}}
    louder = {**base, "quiet": True, "trainer": {"epochs": 3, "device": "cuda"}, "data": {"root": "/y"}}
    assert store.config_hash(base) == store.config_hash(louder)
    assert store.config_hash(base) != store.config_hash({**base, "seed": 1})


def test_an_option_added_at_its_neutral_value_keeps_old_cells_finished():
    before = {"seed": 0, "trainer": {"epochs": 3}}
    after = {**before, "init": None, "quantize": {"int8": False, "mode": "simulated"}}
    assert store.config_hash(before) == store.config_hash(after)
    assert store.config_hash(before) != store.config_hash({**after, "quantize": {"int8": True, "mode": "simulated"}})
    assert store.config_hash(before) != store.config_hash({**after, "init": "/some/checkpoint.pt"})


def test_every_shipped_table_file_parses_with_paper_sources(monkeypatch):
    monkeypatch.chdir(ROOT)
    for number in [*"1234567", "bigs_table1"]:
        spec = tables.load_spec(number)
        assert {"paper", "cpu"} <= set(spec.budgets)
        for row in spec.rows:
            for value in row.paper.values():
                assert value["source"], (number, row.name)


def test_unknown_table_lists_available(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(Exception, match="available: 1, 2, 3, 4, 5, 6, 7, fidelity, fidelity_hyperpartisan, fidelity_hyperpartisan_length, fidelity_multiatis, fidelity_pooling, precision, bigs_long, bigs_positions, bigs_table1"):
        tables.load_spec("42")


def test_bigs_table_pretrains_each_row_once_and_fine_tunes_from_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = tables.load_spec("bigs_table1")
    assert spec.stem == "bigs_table1" and [row.name for row in spec.rows_for("cpu")][:2] == [
        "GATED+SSM (BiGS)", "STACK+attention (BERT)"]
    bigs, bert = spec.rows[:2]
    pretraining = spec.pretrain_overrides(bigs, "cpu")
    assert pretraining[0] == "task=mlm" and "model=bigs_mini" in pretraining and pretraining[-3:] == [
        "arch=gated", "routing=ssm", "seed=0"]
    # every fine-tuning cell starts from its own row's pretraining; equal tokens: the same budget for every row
    for row, group, seed, overrides in spec.cells("cpu"):
        assert f"init=run:{tables.pretraining_identity(spec, row, 'cpu')[0]}" in overrides and group[0].startswith("data=")
        assert spec.pretrain_overrides(row, "cpu")[:-3] == pretraining[:-3]
    assert spec.seeds_for("cpu") == [0, 1, 2]
    # four architectures x five GLUE tasks (MRPC, STS-B: two columns, one run) x three seeds
    assert len(spec.cells("cpu")) == 4 * 5 * 3
    identities = {tables.pretraining_identity(spec, row, "cpu") for row in spec.rows}
    assert len(identities) == 4
    columns = tables.display_columns(spec)
    assert columns[-1].name == "MLM dev perplexity" and columns[-1].overrides == [tables.PRETRAINING]


def test_a_bigs_fine_tuning_cell_changes_identity_with_its_pretraining_budget(monkeypatch):
    """The pretraining is part of each fine-tuning cell's identity: a changed budget re-runs the cells, in new folders."""
    monkeypatch.chdir(ROOT)
    spec = tables.load_spec("bigs_table1")
    cells, _ = tables.plan(spec, "smoke", Path("/nonexistent"))
    longer = spec.budgets["smoke"]["pretrain_overrides"] + ["trainer.max_steps=4"]
    monkeypatch.setitem(spec.budgets["smoke"], "pretrain_overrides", longer)
    again, _ = tables.plan(spec, "smoke", Path("/nonexistent"))
    assert len(cells) == len(again) == 5
    for (*_, overrides, identity), (*_, other_overrides, other_identity) in zip(cells, again):
        assert identity != other_identity  # the store key
        assert [o for o in overrides if o.startswith("init=")] != [o for o in other_overrides if o.startswith("init=")]  # the folder


def test_metric_of_reads_both_record_layouts():
    column = tables.Column(name="x", metric="accuracy", split="dev", language="")
    assert tables.metric_of({"metrics": {"dev": {"accuracy": 71.0, "examples": 9}}}, column, "fp32") == 71.0
    column = tables.Column(name="x", metric="accuracy", split="test", language="de")
    assert tables.metric_of({"metrics": {"test": {"de": {"accuracy": 80.0}, "avg": {}}}}, column, "fp32") == 80.0
    assert tables.metric_of({"metrics": {"test": {"avg": {}}}}, column, "fp32") is None


@pytest.mark.slow
def test_bigs_table_smoke_budget_end_to_end(tmp_path, monkeypatch):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "bigs_table1.yaml").write_text((ROOT / "experiments" / "bigs_table1.yaml").read_text())
    done = bench("table", "bigs_table1", "--budget", "smoke", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.count("pretraining") == 1
    payload = json.loads((tmp_path / "results" / "bigs_table1.json").read_text())
    ours = {cell["column"]: cell["ours_mean"] for cell in payload["cells"] if cell["row"] == "GATED+SSM (BiGS)"}
    assert all(value is not None for value in ours.values()) and ours["MLM dev perplexity"] > 1
    again = bench("table", "bigs_table1", "--budget", "smoke", "--quiet", cwd=tmp_path)
    assert again.returncode == 0 and "pretraining" not in again.stdout and "seeds" not in again.stdout


def test_params_plot_draws_ours_and_paper(tmp_path):
    from pnlp_bench.commands.plots import paper_params, params_plot

    assert paper_params("1.2M") == 1.2e6 and paper_params("200K") == 2e5 and paper_params("1.2M / 2.2M") == 1.2e6
    cells = [
        {"column": "avg", "precision": "fp32", "params": p, "ours_mean": m, "row": r, "paper": q, "paper_params": pp,
         "metric": "test/avg/exact_match"}
        for r, p, m, q, pp in (("X-SMALL", 215_689, 60.0, 70.7, "200K"), ("BASE", 1_186_185, 65.0, 74.8, "1.2M"))
    ]
    table = {"table": "5", "title": "t", "budget": "cpu", "plot": {"kind": "params", "columns": ["avg"]}, "cells": cells}
    assert params_plot(table, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_a_table_killed_mid_sweep_finishes_only_the_missing_cells_with_the_same_numbers(project, tmp_path):
    import signal
    import time

    # Uninterrupted reference in another output root.
    reference = bench("table", "99", "--budget", "smoke", "--output-root", str(tmp_path / "reference"),
                      "--results-dir", str(tmp_path / "reference-results"), cwd=project)
    assert reference.returncode == 0, reference.stderr[-2000:]
    # The same table, SIGKILLed (the whole process group: table, sweep and run) once its first cell is stored.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "BENCH_OUTPUT_ROOT": str(project / "outputs")}
    sweep = subprocess.Popen([sys.executable, "-m", "pnlp_bench.cli", "table", "99", "--budget", "smoke"], cwd=project,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while store_lines(project) < 1 and sweep.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)
    sweep.wait()
    assert store_lines(project) == 1, "the kill should land between the two cells"
    resumed = bench("table", "99", "--budget", "smoke", cwd=project)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "seeds [1]" in resumed.stdout  # only the missing cell ran
    assert store_lines(project) == 2
    ours = json.loads((project / "results" / "table99.json").read_text())["cells"]
    theirs = json.loads(reference_results(project, tmp_path))["cells"]
    assert [(c["column"], c["ours_mean"], c["seeds"]) for c in ours] == [(c["column"], c["ours_mean"], c["seeds"]) for c in theirs]


def reference_results(project: Path, tmp_path: Path) -> str:
    """The reference run wrote its results into the same results/ folder before; re-render them from its store."""
    done = bench("table", "99", "--budget", "smoke", "--aggregate-only", "--output-root", str(tmp_path / "reference"),
                 "--results-dir", str(tmp_path / "reference-results"), cwd=project)
    assert done.returncode == 0, done.stderr[-2000:]
    return (tmp_path / "reference-results" / "table99.json").read_text()


def test_a_cell_that_cannot_run_here_says_why_in_the_table(tmp_path, monkeypatch):
    (tmp_path / "experiments").mkdir()
    spec = TINY_TABLE.replace("overrides: [model=mixer_xs]", "overrides: [model=mixer_xs, projection=bert]")
    spec = spec.replace("seeds: [0, 1]", "seeds: [0]")
    (tmp_path / "experiments" / "table99.yaml").write_text(spec)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))  # no BERT weights where the projection looks
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = bench("table", "99", "--budget", "smoke", cwd=tmp_path)
    assert done.returncode == 1
    markdown = (tmp_path / "results" / "table99.md").read_text()
    assert "not run here: mBERT weights not available offline" in markdown
    assert "huggingface" not in markdown  # the full error stays in the record, not in the table
    failed = [record for record in store.records(tmp_path / "outputs") if record["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["config_hash"] and "\n" not in failed[0]["error"]


def test_cells_finished_by_another_process_during_a_table_are_not_run_again(tmp_path, monkeypatch):
    """`bench table` reads the store again before each launch, so a cell a second stream finished meanwhile
    (another `bench table`, or a hand-started `bench run` of the same config) is skipped, not run twice."""
    monkeypatch.chdir(ROOT)
    spec = tables.load_spec("bigs_table1")
    cells, done = tables.plan(spec, "smoke", tmp_path)
    assert not done and len(cells) == 5  # smoke: the GATED+SSM row, five GLUE tasks
    later = cells[-1]
    launched = []

    def fake_run(command, **_):
        launched.append(next(arg for arg in command if arg.startswith("data=")))
        if len(launched) == 1:  # meanwhile, another process finishes the table's last cell
            config_hash, version = later[4]
            store.append(tmp_path, {"config_hash": config_hash, "code_version": version, "status": "finished"})
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(tables, "pretrain_rows", lambda *args: set())
    monkeypatch.setattr(tables.subprocess, "run", fake_run)
    assert tables.launch(spec, "smoke", tmp_path, []) == 0
    assert len(launched) == 4 and later[1][0] not in launched


def fake_record(identity: tuple[str, str], seed: int, metrics: dict, **extra) -> dict:
    config_hash, version = identity
    return {"status": "finished", "config_hash": config_hash, "code_version": version, "seed": seed, "metrics": metrics,
            "parameters": {"total": 1000}, "epochs": 3, "budget": "a test budget", "run_dir": f"/runs/{config_hash}-{seed}",
            "provenance": {"device": "cpu", "commit": "0" * 40, "date": "2026-12-06T00:00:00", "dirty": False}, **extra}


def test_bigs_claims_average_and_score_against_pretraining_from_records(tmp_path, monkeypatch):
    """The table file's claims are decided from paired seeds; the GLUE average and the scaling sweep come from
    the records of several budgets, snapshots of one pretraining included."""
    from pnlp_bench.commands import table_claims

    monkeypatch.chdir(ROOT)
    spec = tables.load_spec("bigs_table1")
    # per row: a level, and per seed a wobble; BiGS and BERT within 0.3, STACK+SSM 8 below, GATED+attention
    # 0.5 below BERT with a spread too wide to tell
    level = {"GATED+SSM (BiGS)": 80.0, "STACK+attention (BERT)": 80.1, "STACK+SSM": 72.0, "GATED+attention": 79.6}
    wobble = {"GATED+SSM (BiGS)": [0.1, -0.2, 0.0], "STACK+attention (BERT)": [0.0, 0.1, -0.1],
              "STACK+SSM": [0.3, -0.3, 0.1], "GATED+attention": [2.0, -1.5, -0.4]}
    for budget, shift in (("cpu_1x", -5.0), ("cpu", 0.0)):
        cells, _ = tables.plan(spec, budget, tmp_path)
        for row, group, seed, _, identity in cells:
            value = level[row.name] + wobble[row.name][seed] + shift
            metric = {"data=cola": "mcc", "data=mrpc": "f1", "data=stsb": "pearson"}.get(group[0], "accuracy")
            scores = {metric: value, "accuracy": value, "spearman": value}
            store.append(tmp_path, fake_record(identity, seed, {"eval": scores}))
    for row in spec.rows:
        snapshots = [{"step": 240, "tokens_seen": 1_966_080, "mlm_loss": 6.0}, {"step": 720, "tokens_seen": 5_898_240, "mlm_loss": 5.5}]
        store.append(tmp_path, fake_record(tables.pretraining_identity(spec, row, "cpu"), 0,
                                           {"eval": {"mlm_loss": 5.0, "perplexity": 148.4}}, tokens_seen=19_660_800,
                                           snapshots=snapshots))

    values = table_claims.seed_values(spec, "cpu", tmp_path, None)
    assert values[("GATED+SSM (BiGS)", "GLUE avg")] == pytest.approx({0: 80.1, 1: 79.8, 2: 80.0})
    assert values[("GATED+SSM (BiGS)", "GLUE avg w/o STS-B")] == pytest.approx({0: 80.1, 1: 79.8, 2: 80.0})
    verdicts = {(claim["claim"], claim["metric"]): claim["verdict"] for claim in table_claims.evaluate_claims(spec, values)}
    assert verdicts[("GATED+SSM about equal to STACK+attention", "SST-2")] == "holds"
    assert verdicts[("STACK+SSM clearly below both", "GLUE avg")] == "holds"
    assert verdicts[("GATED+attention below STACK+attention", "SST-2")] == "cannot tell"

    points = {(point["budget"], point["row"]): point for point in table_claims.scaling_points(spec, tmp_path, None)}
    assert points[("cpu_1x", "STACK+SSM")]["mlm_loss"] == 6.0 and points[("cpu", "STACK+SSM")]["mlm_loss"] == 5.0
    # the scaling budgets fine-tune seed 0 only (the table file says so): the point is that seed's score
    assert points[("cpu_1x", "STACK+SSM")]["scores"]["SST-2"]["mean"] == pytest.approx(72.0 + 0.3 - 5.0)
    assert points[("cpu_1x", "STACK+SSM")]["scores"]["SST-2"]["n"] == 1
    assert points[("cpu_3x", "STACK+SSM")]["mlm_loss"] == 5.5 and points[("cpu_3x", "STACK+SSM")]["scores"]["SST-2"]["n"] == 0

    cells = tables.aggregate(spec, "cpu", tmp_path)
    tables.write_results(spec, "cpu", cells, tmp_path / "results", tmp_path)
    text = (tmp_path / "results" / "bigs_table1.md").read_text()
    assert "## The paper's claims" in text and "**holds**" in text and "**cannot tell**" in text
    assert "| STACK+SSM | cpu_1x | — | 2.0M | 6.000 | 403.4 |" in text
    payload = json.loads((tmp_path / "results" / "bigs_table1.json").read_text())
    assert {"claims", "scaling", "average"} <= set(payload)
    assert set(payload["average"]) == {"GLUE avg", "GLUE avg w/o STS-B"}
    # a claim naming a row the table lacks is refused when the file is read
    spec.claims["statements"][0]["row"] = "nobody"
    with pytest.raises(Exception, match="names row 'nobody'"):
        table_claims.check_spec(spec)
    spec.claims["statements"][0]["row"] = "GATED+SSM (BiGS)"
    spec.average = [{"name": "GLUE avg", "weights": {"QNLI": 1}}]
    with pytest.raises(Exception, match="average weight for 'QNLI', not a column"):
        table_claims.check_spec(spec)
    spec.average = [{"weights": {"SST-2": 1}}]
    with pytest.raises(Exception, match="each average needs a name and weights"):
        table_claims.check_spec(spec)


def test_bigs_figures_draw_the_pretraining_curves_and_the_score_against_loss(tmp_path):
    from pnlp_bench.commands.bigs_plots import bigs_plots

    history = [{"step": step, "epoch": 0, "eval_mlm_loss": 7.0 - step / 1000} for step in (200, 400, 600)]
    record = {"status": "finished", "task": "mlm", "run_dir": "/runs/p", "tokens_seen": 600 * 8192, "steps": 600,
              "history": history, "unigram_baseline": {"mlm_loss": 6.75}}
    cell = {"row": "GATED+SSM (BiGS)", "column": "MLM dev perplexity", "metric": "eval//perplexity", "precision": "fp32",
            "run_dirs": ["/runs/p"]}
    score = {"mean": 80.0, "std": 0.5, "n": 3}
    scaling = [{"budget": budget, "row": "GATED+SSM (BiGS)", "tokens": tokens, "mlm_loss": loss, "scores": {"SST-2": score}}
               for budget, tokens, loss in (("cpu_1x", 2e6, 6.0), ("cpu", 2e7, 5.0))]
    table = {"table": "bigs_table1", "cells": [cell], "scaling": scaling}
    path = tmp_path / "bigs_table1.json"
    links = bigs_plots(path, table, [record])
    assert len(links) == 2 and (tmp_path / "mlm_curves_bigs_table1.png").stat().st_size > 10_000
    assert (tmp_path / "score_vs_pretraining_bigs_table1.png").exists()
    # a table without the sweep keeps the curves and removes the score figure an earlier report drew
    assert bigs_plots(path, {"table": "bigs_table1", "cells": [cell]}, [record]) == [
        "[pretraining curves (dev MLM loss against tokens)](mlm_curves_bigs_table1.png)"]
    assert not (tmp_path / "score_vs_pretraining_bigs_table1.png").exists()
    # and one without pretrainings removes the curves too
    assert bigs_plots(path, {"table": "bigs_table1", "cells": []}, [record]) == []
    assert not (tmp_path / "mlm_curves_bigs_table1.png").exists()


def test_a_fresh_clone_pretrains_again_only_when_a_fine_tune_needs_the_weights(tmp_path, monkeypatch):
    """Committed records hold no weights: a pretraining whose record is committed but whose folder is not here
    runs again when one of its row's fine-tunings is missing, and not when they are all done."""
    monkeypatch.chdir(ROOT)
    spec = tables.load_spec("bigs_table1")
    results, local = tmp_path / "results", tmp_path / "outputs"
    budget = "smoke"
    row = spec.rows_for(budget)[0]
    store.commit(results, [fake_record(tables.pretraining_identity(spec, row, budget), 0, {"eval": {"perplexity": 9.0}})])
    launched = []
    monkeypatch.setattr(tables.subprocess, "run", lambda command, **_: launched.append(command) or subprocess.CompletedProcess(command, 0))
    cells, done = tables.plan(spec, budget, local, results)
    assert tables.pretrain_rows(spec, budget, local, cells, done, []) == set() and len(launched) == 1  # cells missing
    store.commit(results, [fake_record(identity, seed, {"eval": {"accuracy": 50.0}}) for *_, seed, _, identity in cells])
    cells, done = tables.plan(spec, budget, local, results)
    launched.clear()
    assert tables.pretrain_rows(spec, budget, local, cells, done, []) == set() and launched == []  # nothing to fine-tune


PER_LANGUAGE_TABLE = """
table: 98
title: one model per language, and their mean
requires: []
base: [data=mtop_sample, quiet=true]
seeds: [0, 1]
precisions: [fp32, int8]
budgets:
  smoke: {description: "a smoke budget", overrides: [trainer=smoke]}
columns:
  - {name: en, metric: exact_match, language: en, overrides: ["data.languages=[en]"]}
  - {name: de, metric: exact_match, language: de, overrides: ["data.languages=[de]"]}
  - {name: avg, metric: exact_match, mean_of: [en, de]}
rows:
  - name: X-SMALL
    overrides: [model=mixer_xs]
    paper: {en: 77.4, de: 69.8, avg: 73.6}
"""


def test_a_mean_of_column_averages_each_seed_over_the_columns_runs(tmp_path, monkeypatch):
    """Table 5 trains one model per language: its avg column runs nothing itself, and is the per-seed mean of
    the language columns, shown only for the seeds where every language has a finished run."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "table98.yaml").write_text(PER_LANGUAGE_TABLE)
    monkeypatch.chdir(tmp_path)
    spec = tables.load_spec("98")
    cells, _ = tables.plan(spec, "smoke", tmp_path)
    assert len(cells) == 4  # two languages x two seeds: no runs of the avg column's own
    assert all("quantize.int8=true" in overrides for *_, overrides, _ in cells)
    scores = {("data.languages=[en]", 0): 70.0, ("data.languages=[de]", 0): 60.0, ("data.languages=[en]", 1): 72.0}
    for _, group, seed, _, identity in cells:
        if (group[0], seed) in scores:  # German seed 1 has not run
            language = group[0][-3:-1]
            value = scores[(group[0], seed)]
            store.append(tmp_path, fake_record(identity, seed, {"test": {language: {"exact_match": value}}},
                                               metrics_int8={"test": {language: {"exact_match": value - 0.5}}}))
    by_key = {(cell["precision"], cell["column"]): cell for cell in tables.aggregate(spec, "smoke", tmp_path)}
    assert by_key[("fp32", "en")]["ours_mean"] == pytest.approx(71.0)
    assert by_key[("fp32", "avg")]["ours_mean"] == pytest.approx(65.0) and by_key[("fp32", "avg")]["seeds"] == [0]
    assert by_key[("fp32", "avg")]["difference"] == pytest.approx(65.0 - 73.6)
    assert by_key[("int8", "avg")]["ours_mean"] == pytest.approx(64.5)
    assert len(by_key[("fp32", "avg")]["run_dirs"]) == 2  # its provenance: the two runs of seed 0
    # a mean over a column the table lacks, or over itself, is refused when the file is read
    for bad in ("mean_of: [en, fr]", "mean_of: [en, avg]", "mean_of: [en]"):
        (tmp_path / "experiments" / "table98.yaml").write_text(PER_LANGUAGE_TABLE.replace("mean_of: [en, de]", bad))
        with pytest.raises(Exception, match="column 'avg': mean_of"):
            tables.load_spec("98")
