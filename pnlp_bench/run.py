"""`bench run`: one training run, from a composed Hydra config to `metrics.json` and a summary table.

Read top to bottom: parse the typed configs (unknown keys fail before any work), load and featurize the
data, build projection -> bottleneck -> backbone -> head, train, write the run record. A `bigs` backbone
goes to its own pipeline (`pnlp_bench/bigs/pipeline.py`), which writes the same kind of record.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pnlp_bench import metrics as metric_functions
from pnlp_bench import store
from pnlp_bench.config_check import check_config
from pnlp_bench.core.atomic import WriteError, write_json_atomic, write_text_atomic
from pnlp_bench.core.compose import path_component  # noqa: F401  (registers the config's resolvers)
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.identity import FAMILIES, config_identity
from pnlp_bench.core.record import SELECTION_SPLIT, WHOLE_SPLIT, RunRecord, normalise_metrics
from pnlp_bench.core.run_lock import RunFolderBusy, hold_run_folder
from pnlp_bench.data.base import DataConfig, DataError, load_data
from pnlp_bench.data.features import Featurized, featurize_cached
from pnlp_bench.loggers import LOGGERS
from pnlp_bench.models import BACKBONES, HEADS
from pnlp_bench.models.bottleneck import PATHS, ProjectionBottleneck
from pnlp_bench.models.pnlp import PNLPModel
from pnlp_bench.paths import asset
from pnlp_bench.projection import PROJECTIONS
from pnlp_bench.provenance import code_state, provenance
from pnlp_bench.quantize import QuantizeConfig, evaluate_int8
from pnlp_bench.registry import ConfigError, typed_config
from pnlp_bench.training.trainer import TrainerConfig, resolve_precision, train

def options(node: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


def run_identity(cfg: DictConfig) -> dict[str, str]:
    """The run's identity (pnlp_bench/core/identity.py): the run folder, the store and the tables key on it."""
    return {"config_hash": config_identity(cfg), "code_version": store.code_version()}


def check_family(cfg: DictConfig) -> str:
    """The `family` key names the pipeline; a backbone of the other family is refused, never reinterpreted."""
    family = str(cfg.get("family"))
    if family not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if (cfg.backbone.name == "bigs") != (family == "bigs"):
        raise ConfigError(f"family={family} does not run backbone={cfg.backbone.name}: "
                          "choose a model=bigs_* or backbone=bigs preset for BiGS, any other backbone for pNLP-Mixer")
    return family


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: DictConfig, data_config: DataConfig, data: Featurized) -> PNLPModel:
    projection = cfg.projection
    word_dropout = float(cfg.bottleneck.get("word_dropout", 0.0))
    if not 0.0 <= word_dropout < 1.0:
        raise ConfigError(f"bottleneck.word_dropout must be in [0, 1), got {word_dropout}")
    # A learnt vocabulary (projection=embedding: one active row per word) starts as an embedding table does.
    init = "normal" if projection.name == "embedding" else "uniform"
    bottleneck = ProjectionBottleneck(
        projection.feature_size,
        projection.window,
        cfg.bottleneck.dim,
        cfg.bottleneck.path,
        word_dropout,
        init,
        float(projection.get("init_std", 1.0)),
    )
    backbone_options = options(cfg.backbone)
    backbone = BACKBONES.build(
        backbone_options.pop("name"), backbone_options, "backbone", seq_len=data_config.max_words, dim=cfg.bottleneck.dim
    )
    head = HEADS.build(
        data_config.head,
        data_config.head_options,
        "data.head_options",
        dim=cfg.bottleneck.dim,
        num_tags=len(data.labels.tags),
        num_labels=len(data.labels.labels),
        tag_names=list(data.labels.tags),
    )
    return PNLPModel(bottleneck, backbone, head)


def projection_state(projection: Any) -> dict[str, Any]:
    """What a fitted projection (projection=embedding: its vocabulary) needs in the checkpoint to map new words."""
    state = getattr(projection, "state", None)
    return {"projection_state": state()} if state is not None else {}


def scorer(head: str):
    if head == "intent_slots":
        return lambda examples, predicted: metric_functions.by_language(
            examples, metric_functions.intent_slot_scores, predicted["labels"], predicted["tags"]
        )
    return lambda examples, predicted: metric_functions.by_language(
        examples, metric_functions.classification_scores, predicted["labels"]
    )


def print_summary(record: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{record['data']} · {record['model']} · {record['budget']}")
    table.add_column("split")
    table.add_column("language")
    names = [name for name in record["metrics"]["test"]["avg"] if name != "examples"]
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for key, suffix in (("metrics", ""), ("metrics_int8", " int8")):
        for split in ("eval", "test"):
            for lang, scores in record.get(key, {}).get(split, {}).items():
                table.add_row(split + suffix, lang, *(f"{scores[name]:.2f}" for name in names))
    console.print(table)
    console.print(
        f"parameters {record['parameters']['total']:,} (paper-comparable {record['parameters']['paper_comparable']:,}), "
        f"best epoch {record['best_epoch']}, {record['wall_seconds']:.0f} s on {record['provenance']['device']}"
    )
    console.print(f"run folder: {record['run_dir']}")


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    check_config(cfg)  # `bench run` checked it before making the run folder; callers without Hydra's callback did not
    if check_family(cfg) == "bigs":
        # BiGS reads WordPiece text, not projected words: its own pipeline, same run record conventions
        from pnlp_bench.bigs.pipeline import run_bigs

        return run_bigs(cfg, run_dir)
    started = time.perf_counter()
    code = code_state()
    console = Console(quiet=bool(cfg.quiet))
    identity = run_identity(cfg)
    previous = finished_record(run_dir, identity)
    if previous is not None:
        console.print(f"already finished with this config and code: {run_dir / 'metrics.json'}")
        print_summary(previous, console)
        return previous
    data_config = typed_config(DataConfig, options(cfg.data), "data")
    trainer_config = typed_config(TrainerConfig, options(cfg.trainer), "trainer")
    quantize_config = typed_config(QuantizeConfig, options(cfg.quantize), "quantize")
    projection_options = options(cfg.projection)
    projection = PROJECTIONS.build(projection_options.pop("name"), projection_options, "projection")
    if cfg.bottleneck.path not in PATHS:
        raise ConfigError(f"bottleneck.path must be {', '.join(PATHS)}, got {cfg.bottleneck.path!r}")
    seed_everything(int(cfg.seed))

    with console.status("loading data"):
        loaded = load_data(data_config)
    with console.status(f"featurizing {sum(len(v) for v in loaded.splits.values()):,} examples"):
        featurize_started = time.perf_counter()
        data, features_cached = featurize_cached(loaded.splits, loaded.key, projection, data_config.max_words)
        featurize_seconds = time.perf_counter() - featurize_started
    model = build_model(cfg, data_config, data)

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    labels = {"labels": data.labels.labels, "tags": data.labels.tags}
    logger_options = options(cfg.logger)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 logs
        logger_options = {"name": "none"}
    logger = LOGGERS.build(
        logger_options.pop("name"), logger_options, "logger", run_config=options(cfg), run_dir=run_dir, run_name=run_dir.name
    )
    try:
        result = train(
            model,
            data,
            loaded.splits,
            scorer(data_config.head),
            data_config.monitor,
            trainer_config,
            run_dir,
            int(cfg.seed),
            checkpoint_extra={"label_space": labels, "config": options(cfg), **projection_state(projection)},
            quiet=bool(cfg.quiet),
            identity=identity,
            resume=bool(cfg.resume),
            on_epoch=logger.log_epoch,
            monitor_language=data_config.monitor_language,
        )
        # int8: the best checkpoint, quantized post training, evaluated again on eval and test (a copy).
        int8: dict[str, Any] = {}
        if quantize_config.int8:
            with console.status(f"evaluating an int8 copy ({quantize_config.mode})"):
                metrics_int8, quantization = evaluate_int8(
                    model, data, loaded.splits, scorer(data_config.head), trainer_config, quantize_config
                )
            int8 = {"metrics_int8": metrics_int8, "quantization": quantization}
        choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
        record = RunRecord(
            status="finished",
            **identity,
            family="mixer",
            data=choices.get("data", data_config.name),
            model=choices.get("model", "custom"),
            seed=int(cfg.seed),
            budget=trainer_config.budget(),
            metrics=result["metrics"],
            parameters=model.parameter_counts(),
            provenance=provenance(torch.device(result["device"]), code),
            run_dir=str(run_dir),
            wall_seconds=time.perf_counter() - started,
            history=result["history"],
            details={
                "epochs": trainer_config.epochs,
                # what precision=auto turned into on this machine (it differs between CPUs: see resolve_precision)
                "precision": resolve_precision(trainer_config.precision, torch.device(result["device"])),
                **int8,
                "best_epoch": result["best_epoch"],
                "resumed_from_epoch": result["resumed_from_epoch"],
                "world_size": result["world_size"],
                "monitor": result["monitor"],
                "monitor_language": result["monitor_language"],
                "data_report": {
                    **loaded.report,
                    "truncated_to_max_words": {split: tensors.truncated for split, tensors in data.splits.items()},
                    "labels_unseen_in_train": {split: tensors.unseen_labels for split, tensors in data.splits.items()},
                    "unique_words": int(data.word_table.indices.shape[0] - 1),
                },
                "timings": {
                    "featurize_seconds": featurize_seconds,
                    "features_from_cache": features_cached,
                    "train_seconds": result["train_seconds"],
                    # where the training wall time went, summed over this process's epochs (issue: CPU speed)
                    **{
                        f"{part}_seconds": sum(epoch.get(f"{part}_seconds", 0.0) for epoch in result["history"])
                        for part in ("gather", "eval", "checkpoint")
                    },
                },
            },
        ).to_json()
        logger.finish(record)
    finally:
        logger.close()
    if result["is_main"]:
        write_json(run_dir / "metrics.json", record)
        store.append(cfg.output_root, {key: value for key, value in record.items() if key != "history"})
        print_summary(record, console)
    return record


def finished_record(run_dir: Path, identity: dict[str, str]) -> dict[str, Any] | None:
    """The run folder's record when it finished with the same resolved config and code, else None."""
    path = run_dir / "metrics.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    same = all(record.get(key) == value for key, value in identity.items())
    return record if same and record.get("status") == "finished" else None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    write_json_atomic(path, payload)


def record_failure(run_dir: Path, error: BaseException, cfg: DictConfig | None = None) -> None:
    """metrics.json says why the run failed; the store gets a `failed` line too (when the config resolves),
    so a table can say "not run here: <why>" for a cell instead of a bare dash."""
    message = f"{type(error).__name__}: {error}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "metrics.json", {"status": "failed", "error": message, "traceback": traceback.format_exc()})
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


def adopt_legacy_run_dir(run_dir: Path, override_dirname: str, console: Console) -> None:
    """An unfinished run in a folder of the old naming (a hash of the override string, before run folders
    were named by identity) goes on here: its files move to the new folder, so no finished epoch is lost."""
    legacy = run_dir.parent / f"{run_dir.name.rsplit('-', 1)[0]}-{hashlib.sha256(override_dirname.encode()).hexdigest()[:8]}"
    if legacy == run_dir or not (legacy / "last.pt").is_file() or (run_dir / "last.pt").exists():
        return
    for item in legacy.iterdir():
        if item.name != ".hydra" and not (run_dir / item.name).exists():
            item.replace(run_dir / item.name)
    (legacy / "MOVED").write_text(f"this unfinished run goes on in {run_dir}\n")
    console.print(f"going on from {legacy} (a run folder of the old naming), moved to {run_dir}")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    if cfg.get("resume"):
        adopt_legacy_run_dir(run_dir, hydra_config.job.override_dirname, Console(quiet=bool(cfg.get("quiet"))))
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
