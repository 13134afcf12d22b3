"""`bench run`: the Hydra entry point. One job: check the composed config, name the pipeline by the config's
`family` (pNLP-Mixer: pnlp_bench/mixer/pipeline.py; BiGS: pnlp_bench/bigs/pipeline.py), hold the run
folder, record a failure so that every launcher sees it, return the monitored metric to Hydra's sweepers."""

from __future__ import annotations

import hashlib
import os
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from pnlp_bench.bigs.pipeline import run_bigs
from pnlp_bench.commands.config_check import check_config
from pnlp_bench.core import store
from pnlp_bench.core.atomic import WriteError, save_torch_atomic, write_json_atomic
from pnlp_bench.core.checkpoint import load_checkpoint, resume_advice
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.files import DataError
from pnlp_bench.core.identity import FAMILIES
from pnlp_bench.core.record import SELECTION_SPLIT, WHOLE_SPLIT, normalise_metrics, run_identity
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.run_lock import RunFolderBusy, hold_run_folder
from pnlp_bench.mixer.pipeline import run_mixer


def check_family(cfg: DictConfig) -> str:
    """The `family` key names the pipeline; a backbone of the other family is refused, never reinterpreted."""
    family = str(cfg.get("family"))
    if family not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if (cfg.backbone.name == "bigs") != (family == "bigs"):
        raise ConfigError(f"family={family} does not run backbone={cfg.backbone.name}: "
                          "choose a model=bigs_* or backbone=bigs preset for BiGS, any other backbone for pNLP-Mixer")
    return family


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """One run of either family: the `family` key names the pipeline."""
    check_config(cfg)  # `bench run` checked it before making the run folder; callers without Hydra's callback did not
    if check_family(cfg) == "bigs":
        # BiGS reads WordPiece text, not projected words: its own pipeline, the same run record
        return run_bigs(cfg, run_dir)
    return run_mixer(cfg, run_dir)


def record_failure(run_dir: Path, error: BaseException, cfg: DictConfig | None = None) -> None:
    """metrics.json says why the run failed; the store gets a `failed` line too (when the config resolves),
    so a table can say "not run here: <why>" for a cell instead of a bare dash."""
    message = f"{type(error).__name__}: {error}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "metrics.json", {"status": "failed", "error": message, "traceback": traceback.format_exc()})
    except OSError:  # WriteError included
        return  # the disk that refused the run's files may refuse this record too; the error line still says why
    if cfg is None:
        return
    try:
        keys = run_identity(cfg)
        output_root = str(cfg.output_root)
    except Exception:  # a config that does not resolve has no identity: metrics.json alone says why
        return
    try:
        store.append(output_root, {"status": "failed", **keys, "error": message.splitlines()[0], "run_dir": str(run_dir)})
    except WriteError:
        return  # as above: metrics.json holds the failure


def monitored_value(record: dict[str, Any]) -> float:
    """The number a Hydra sweeper optimises: the best value of the monitored metric on the selection split
    (the eval split's `monitor` in `monitor_language`, BiGS: the eval (GLUE dev) split's `data.monitor`, or the lowest dev MLM loss
    of a pretraining run, for `direction: minimize`), the value that chose `best.pt`."""
    best = record.get("best")
    if best is not None:  # a BiGS record
        if best["monitor"] == "mlm_loss":
            return float(best["mlm_loss"])
        return float(normalise_metrics(best["metrics"])[SELECTION_SPLIT][WHOLE_SPLIT][best["monitor"]])
    return max(float(epoch[f"eval_{record['monitor']}"]) for epoch in record["history"])


class JobFailed(CompactHydraException):
    """A sweep job's failure as Hydra sees it: the launcher marks the job failed and Hydra's sweeper ends the
    sweep with a non-zero exit once the batch is done, under every launcher. Only text travels with it, so
    it pickles back from a joblib or submitit worker whatever the original error held."""


def adopt_legacy_run_dir(run_dir: Path, override_dirname: str, console: Console, identity: dict[str, str] | None = None) -> None:
    """An unfinished run in a folder of the old naming (a hash of the override string, before run folders
    were named by identity) goes on here: its files move to the new folder, so no finished epoch is lost.
    Its `last.pt` names the run by the old identity rule; written by this code version for these very
    overrides, it is this run, so it takes the run's identity today (`identity`) and a resume accepts it."""
    legacy = run_dir.parent / f"{run_dir.name.rsplit('-', 1)[0]}-{hashlib.sha256(override_dirname.encode()).hexdigest()[:8]}"
    if legacy == run_dir or not (legacy / "last.pt").is_file() or (run_dir / "last.pt").exists():
        return
    for item in legacy.iterdir():
        if item.name != ".hydra" and not (run_dir / item.name).exists():
            item.replace(run_dir / item.name)
    (legacy / "MOVED").write_text(f"this unfinished run goes on in {run_dir}\n")
    last = run_dir / "last.pt"
    if identity is not None and last.is_file():
        state = load_checkpoint(last, resume_advice(last))
        if state.get("identity", {}).get("code_version") == identity["code_version"]:
            save_torch_atomic(last, {**state, "identity": identity})
    console.print(f"going on from {legacy} (a run folder of the old naming), moved to {run_dir}")


@hydra.main(version_base="1.3", config_path="pkg://pnlp_bench.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    if cfg.get("resume"):
        adopt_legacy_run_dir(run_dir, hydra_config.job.override_dirname, Console(quiet=bool(cfg.get("quiet"))), run_identity(cfg))
    sweeping = hydra_config.mode == RunMode.MULTIRUN
    # Only the main process of a launch holds the folder: torchrun's other ranks train into it with rank 0.
    holds_folder = int(os.environ.get("RANK", "0")) == 0
    held = ExitStack()  # released in `finally`, after a failure record is written into the folder
    try:
        if holds_folder:
            held.enter_context(hold_run_folder(run_dir))
        record = run(cfg, run_dir)
    except RunFolderBusy as error:
        # No failure record: the folder, its metrics.json and its cell in the store belong to the holder.
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        if not sweeping:
            raise SystemExit(1) from None
        raise JobFailed(f"job failed: {run_dir}: {error}") from None
    except (ConfigError, DataError, OneLineError) as error:
        record_failure(run_dir, error, cfg)
        # One clear line, no traceback: the message names the key, file or line at fault.
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        if not sweeping:
            raise SystemExit(2) from None
        raise JobFailed(f"job failed: {run_dir}: {error}") from None
    except Exception as error:
        record_failure(run_dir, error, cfg)
        if not sweeping:
            raise
        # The other jobs of the sweep go on (the launcher catches this); the record says what went wrong.
        Console(stderr=True).print(f"[bold red]job failed:[/] {run_dir}: {type(error).__name__}: {error}", soft_wrap=True)
        raise JobFailed(f"job failed: {run_dir}: {type(error).__name__}: {error}") from None
    finally:
        held.close()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return monitored_value(record)
