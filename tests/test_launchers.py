"""Scale-out on existing engines: Hydra's joblib and submitit launchers, and the optional wandb logger."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pnlp_bench.core import store

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=mixer_xs", "trainer=smoke", "trainer.epochs=1", "data.train_limit=100", "data.eval_limit=40",
        "data.test_limit=40", "quiet=true"]


def bench(*args: str, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "BENCH_OUTPUT_ROOT": str(cwd / "outputs"), **env_extra}
    return subprocess.run([sys.executable, "-m", "pnlp_bench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def finished_seeds(root: Path) -> list[int]:
    records = [json.loads(p.read_text()) for p in root.glob("outputs/runs/*/*/metrics.json")]
    return sorted(r["seed"] for r in records if r["status"] == "finished")


def test_submitit_local_executor_sweep(tmp_path):
    done = bench("run", "--multirun", *TINY, "seed=0,1", "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert finished_seeds(tmp_path) == [0, 1]


def test_joblib_parallel_sweep(tmp_path):
    done = bench("run", "--multirun", *TINY, "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert finished_seeds(tmp_path) == [0, 1]


def test_joblib_sweep_with_a_failing_job_exits_1_and_names_it(tmp_path):
    """The failure happens in a joblib worker, not in the process that reports: the summary reads records."""
    # (not data.root=<missing>,null: where the data lives is no part of a run's identity, so both would be one run)
    done = bench("run", "--multirun", *TINY, "data.languages=[en],[zz]", "hydra/launcher=joblib",
                 "hydra.launcher.n_jobs=2", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    records = {path.parent: json.loads(path.read_text()) for path in tmp_path.glob("outputs/runs/*/*/metrics.json")}
    assert sorted(record["status"] for record in records.values()) == ["failed", "finished"]
    (failed_dir,) = [run_dir for run_dir, record in records.items() if record["status"] == "failed"]
    assert "1 job(s) of the sweep failed" in done.stderr
    assert f"{failed_dir}: " in done.stderr and "MTOP has no language 'zz'" in done.stderr
    assert sorted(line["status"] for line in store.records(tmp_path / "outputs")) == ["failed", "finished"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="needs hydra-optuna-sweeper (pip install pnlp-bench[optuna])")
def test_optuna_sweep_maximises_the_metric_bench_run_returns(tmp_path):
    done = bench("run", "--multirun", "hparams_search=mixer_optuna", *TINY, "data.monitor=intent_accuracy",
                 "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in tmp_path.glob("outputs/runs/*/*/metrics.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"finished"}
    best = max(max(epoch["eval_intent_accuracy"] for epoch in r["history"]) for r in records)
    result = yaml.safe_load((tmp_path / "outputs" / "runs" / "optimization_results.yaml").read_text())
    assert result["best_value"] == best and set(result["best_params"]) == {"trainer.lr", "backbone.dropout"}


def test_wandb_logs_offline_without_an_account(tmp_path):
    done = bench("run", *TINY, "logger=wandb", cwd=tmp_path, WANDB_MODE="offline", WANDB_DIR=str(tmp_path),
                 WANDB_SILENT="true", WANDB_API_KEY="")
    assert done.returncode == 0, done.stderr[-3000:]
    offline_runs = list(tmp_path.glob("outputs/runs/*/*/wandb/offline-run-*"))
    assert offline_runs, "wandb wrote no offline run"
    assert list(offline_runs[0].glob("*.wandb"))
    # the wandb run is named by the run's identity, so a resumed run continues it (resume="allow")
    (record_path,) = tmp_path.glob("outputs/runs/*/*/metrics.json")
    record = json.loads(record_path.read_text())
    assert offline_runs[0].name.endswith(f"-{record['config_hash']}-{record['code_version']}")


def test_wandb_is_never_imported_unless_chosen():
    code = (
        "import sys; from pnlp_bench.commands import run, table as tables; from pnlp_bench.core import loggers; "
        "assert 'wandb' not in sys.modules, 'wandb was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
