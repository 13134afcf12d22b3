"""A pNLP-Mixer run, read top to bottom: parse the typed configs (unknown keys fail before any work), load
and featurize the data, build projection -> bottleneck -> backbone -> head, train, write the run record.
`bench run` (pnlp_bench/commands/run.py) hands a run here when its `family` is `mixer`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from pnlp_bench.core import store
from pnlp_bench.core.atomic import write_json_atomic, write_text_atomic
from pnlp_bench.core.checkpoint import load_checkpoint
from pnlp_bench.core.compose import cell_identity, default_config, options
from pnlp_bench.core.device import resolve_precision
from pnlp_bench.core.identity import read_view, with_renamed_keys
from pnlp_bench.core.loggers import LOGGERS
from pnlp_bench.core.provenance import code_state, provenance
from pnlp_bench.core.record import RunRecord, finished_record, run_identity, seed_everything
from pnlp_bench.core.registry import ConfigError, typed_config
from pnlp_bench.mixer.metrics import scorer
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.features import Featurized, LabelSpace, featurize_cached
from pnlp_bench.mixer.models import BACKBONES, HEADS
from pnlp_bench.mixer.models.bottleneck import PATHS, ProjectionBottleneck
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.paper_reference import PaperNumber, comparison_table, reference_for
from pnlp_bench.mixer.predictions import PREDICTIONS, PREDICTIONS_INT8, write_predictions
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.mixer.projection.base import Projection
from pnlp_bench.mixer.quantize import QuantizeConfig, evaluate_int8
from pnlp_bench.mixer.trainer import TrainerConfig, train


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
        backbone_options.pop("name"), backbone_options, "backbone", seq_len=data_config.max_length, dim=cfg.bottleneck.dim
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


def metrics_table(record: dict[str, Any]) -> Table:
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
    return table


def print_summary(record: dict[str, Any], console: Console, reference: list[PaperNumber] | None = None) -> None:
    """One table: the run's metrics per split and language or, for the paper's cell (`reference`, what
    `make run` trains), ours beside the paper; then parameters, best epoch, wall time and device."""
    console.print(comparison_table(record, reference) if reference else metrics_table(record))
    console.print(
        f"parameters {record['parameters']['total']:,} (paper-comparable {record['parameters']['paper_comparable']:,}), "
        f"best epoch {record['best_epoch']}, {record['wall_seconds']:.0f} s on {record['provenance']['device']}"
    )
    console.print(f"run folder: {record['run_dir']}")


def run_mixer(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """A pNLP-Mixer run (any backbone but BiGS) from its composed config to its record."""
    started = time.perf_counter()
    code = code_state()
    console = Console(quiet=bool(cfg.quiet))
    identity = run_identity(cfg)
    previous = finished_record(run_dir, identity)
    if previous is not None:
        console.print(f"already finished with this config and code: {run_dir / 'metrics.json'}")
        print_summary(previous, console, reference_for(read_view(cfg), previous["data"], default_config()))
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
        data, features_cached = featurize_cached(loaded.splits, loaded.key, projection, data_config.max_length)
        featurize_seconds = time.perf_counter() - featurize_started
    model = build_model(cfg, data_config, data)

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    labels = {"labels": data.labels.labels, "tags": data.labels.tags}
    logger_options = options(cfg.logger)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 logs
        logger_options = {"name": "none"}
    logger = LOGGERS.build(
        logger_options.pop("name"), logger_options, "logger", run_config=options(cfg), run_dir=run_dir,
        run_name=run_dir.name, run_id=f"{identity['config_hash']}-{identity['code_version']}",
        group=f"{run_dir.parent.name}/{run_dir.name.rsplit('-', 1)[0]}-{cell_identity(cfg)}",
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
        # the eval and test predictions of the best checkpoint, from the pass that scored it
        if result["is_main"]:
            write_predictions(run_dir / PREDICTIONS, [(split, loaded.splits[split], p) for split, p in result["predictions"].items()])
        # int8: the best checkpoint, quantized post training, evaluated again on eval and test (a copy).
        int8: dict[str, Any] = {}
        if quantize_config.int8:
            with console.status(f"evaluating an int8 copy ({quantize_config.mode})"):
                metrics_int8, quantization, predictions_int8 = evaluate_int8(
                    model, data, loaded.splits, scorer(data_config.head), trainer_config, quantize_config
                )
            int8 = {"metrics_int8": metrics_int8, "quantization": quantization, "predictions_int8": PREDICTIONS_INT8}
            if result["is_main"]:
                write_predictions(run_dir / PREDICTIONS_INT8, [(split, loaded.splits[split], p) for split, p in predictions_int8.items()])
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
                "predictions": PREDICTIONS,  # a file of the run folder (mixer/predictions.py)
                "best_epoch": result["best_epoch"],
                "resumed_from_epoch": result["resumed_from_epoch"],
                "world_size": result["world_size"],
                "monitor": result["monitor"],
                "monitor_language": result["monitor_language"],
                "data_report": {
                    **loaded.report,
                    "truncated_to_max_length": {split: tensors.truncated for split, tensors in data.splits.items()},
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
        write_json_atomic(run_dir / "metrics.json", record)
        store.append(cfg.output_root, {key: value for key, value in record.items() if key != "history"})
        print_summary(record, console, reference_for(read_view(cfg), record["data"], default_config()))
    return record


def load_trained(run_dir: Path) -> tuple[PNLPModel, Projection, DataConfig, LabelSpace]:
    """The best checkpoint of a finished (or interrupted, after its first epoch) `bench run`."""
    checkpoint_path = run_dir / "best.pt"
    if not checkpoint_path.is_file():
        raise ConfigError(f"{checkpoint_path}: no checkpoint (is {run_dir} the folder of a `bench run` past its first epoch?)")
    checkpoint = load_checkpoint(checkpoint_path, f"train the run again: remove {run_dir} and repeat its bench run")
    missing = [key for key in ("model", "config", "label_space") if key not in checkpoint]
    if missing:
        raise ConfigError(f"{checkpoint_path}: not a pNLP-Mixer checkpoint (no {', '.join(missing)})")
    labels = LabelSpace(labels=list(checkpoint["label_space"]["labels"]), tags=list(checkpoint["label_space"]["tags"]))
    model, projection, data_config = rebuild_trained(
        checkpoint["config"], labels, checkpoint.get("projection_state"), checkpoint_path
    )
    model.load_state_dict(checkpoint["model"])
    return model.eval(), projection, data_config, labels


def rebuild_trained(
    config: dict[str, Any], labels: LabelSpace, projection_state: dict[str, Any] | None, where: Path
) -> tuple[PNLPModel, Projection, DataConfig]:
    """The (untrained) model, the projection and the data config a run's resolved config describes; keys
    renamed since the run was recorded (data.max_words) read as today's. `where` names the file in errors."""
    cfg = OmegaConf.create(with_renamed_keys(config))
    if cfg.backbone.name == "bigs":
        raise ConfigError(f"{where}: a BiGS run; bench predict serves pNLP-Mixer runs")
    data_options = options(cfg.data)
    data_config = DataConfig(**{key: data_options[key] for key in ("name", "max_length", "head", "head_options")})
    model = build_model(cfg, data_config, SimpleNamespace(labels=labels))
    projection_options = options(cfg.projection)
    projection = PROJECTIONS.build(projection_options.pop("name"), projection_options, "projection")
    if hasattr(projection, "load_state"):
        if projection_state is None:
            raise ConfigError(f"{where}: projection {cfg.projection.name!r} needs its fitted state, which it lacks")
        projection.load_state(projection_state)
    return model, projection, data_config
