"""`bench run backbone=bigs ...` and `bench pretrain ...`: one BiGS run, from the composed config to its record.

Read top to bottom: parse the typed configs (a wrong key or value fails before any work), load the text
data set, build the model (fresh, or from `init=`), tokenize, pretrain (corpora) or fine-tune (GLUE,
SCROLLS), write the run record. The run folder, `config.yaml`, `metrics.json` (with provenance and the
budget said plainly), atomic checkpoints and the summary table follow `pnlp_bench/commands/run.py`'s conventions.

The pNLP-Mixer nodes of the config (`projection`, `bottleneck`, `size`, `quantize`) mean nothing to BiGS:
they are left out of the resolved config and of the record. As for every run, a folder whose record
finished with the same config and code is not run again, and finished records go to the results store.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from pnlp_bench.bigs.checkpoints import build_for_task, initialise
from pnlp_bench.bigs.config import BiGSBackboneConfig, BiGSTrainerConfig
from pnlp_bench.bigs.finetune import device_for, finetune
from pnlp_bench.bigs.baselines import context_free_baseline, unigram_baseline
from pnlp_bench.bigs.pretrain import DEV_MASK_SEED, build_blocks, dev_batch_size, pretrain
from pnlp_bench.bigs.tokenization import encode_examples, vocabulary
from pnlp_bench.core.atomic import write_json_atomic, write_text_atomic
from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig
from pnlp_bench.bigs.data.loaders import is_text_data, load_text_data
from pnlp_bench.core.metrics import metric_names, score_text_task
from pnlp_bench.core.paths import BERT_UNCASED_VOCAB
from pnlp_bench.core.device import resolve_precision
from pnlp_bench.core.provenance import provenance
from pnlp_bench.core.registry import ConfigError, typed_config
from pnlp_bench.core.host import prepare_host
from pnlp_bench.core import store
from pnlp_bench.core.compose import config_identity
from pnlp_bench.core.identity import UNREAD_BY_FAMILY
from pnlp_bench.core.record import SELECTION_SPLIT, WHOLE_SPLIT, RunRecord, finished_record, normalise_metrics, seed_everything

PNLP_ONLY = UNREAD_BY_FAMILY["bigs"]
FINETUNE_REPORTING = (
    "dev split, final epoch (as the paper's PyTorch numbers; GLUE and SCROLLS test labels are hidden). "
    "`best` holds the best evaluation over epochs, which the authors' JAX script reports instead."
)


def bigs_options(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without the pNLP-Mixer nodes (whose interpolations may not resolve here)."""
    data_name = cfg.data.get("name")
    if not is_text_data(data_name):  # before resolving: a pNLP data set lacks the keys BiGS interpolates
        raise ConfigError(f"data={data_name} is a pNLP-Mixer data set; backbone=bigs runs on {', '.join(TEXT_DATA.names())}")
    kept = OmegaConf.masked_copy(cfg, [key for key in cfg if key not in PNLP_ONLY])
    return OmegaConf.to_container(kept, resolve=True)  # type: ignore[return-value]


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())  # the tied MLM decoder is the embedding matrix: counted once
    embeddings = sum(p.numel() for p in model.backbone.embeddings.parameters())
    encoder = sum(p.numel() for p in model.backbone.encoder.parameters())
    return {"total": total, "embeddings": embeddings, "encoder": encoder, "head": total - embeddings - encoder}


def model_label(cfg: DictConfig) -> str:
    chosen = HydraConfig.get().runtime.choices.get("model", "") if HydraConfig.initialized() else ""
    return chosen if chosen.startswith("bigs") else "bigs"


def refuse_pnlp_only_options(cfg: DictConfig) -> None:
    """Options of pNLP-Mixer runs that a BiGS run would otherwise ignore without a word."""
    if cfg.get("quantize") is not None and cfg.quantize.get("int8"):
        raise ConfigError("quantize.int8 evaluates pNLP-Mixer models; it is not wired to backbone=bigs")
    if cfg.get("logger") is not None and cfg.logger.get("name", "none") != "none":
        raise ConfigError(f"logger={cfg.logger.name} is not wired to backbone=bigs runs yet; use logger=none")


def parse_configs(resolved: dict[str, Any]) -> tuple[TextDataConfig, BiGSBackboneConfig, BiGSTrainerConfig]:
    data_config = typed_config(TextDataConfig, resolved["data"], "data")
    TEXT_DATA.parse(data_config.name, data_config.options, "data.options")
    backbone_config = typed_config(BiGSBackboneConfig, resolved["backbone"], "backbone")
    trainer_config = typed_config(BiGSTrainerConfig, resolved["trainer"], "trainer")
    return data_config, backbone_config, trainer_config


def run_bigs(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    console = Console(quiet=bool(cfg.quiet))
    refuse_pnlp_only_options(cfg)
    resolved = bigs_options(cfg)
    identity = {"config_hash": config_identity(cfg), "code_version": store.code_version()}
    previous = finished_record(run_dir, identity)
    if previous is not None:
        console.print(f"already finished with this config and code: {run_dir / 'metrics.json'}")
        print_summary(previous, console)
        return previous
    data_config, backbone_config, trainer_config = parse_configs(resolved)
    init = resolved.get("init")
    seed = int(resolved["seed"])
    seed_everything(seed)
    if trainer_config.num_threads:
        torch.set_num_threads(trainer_config.num_threads)
    prepare_host(trainer_config.host_allocator, device_for(trainer_config).type)
    vocab_path = str(BERT_UNCASED_VOCAB)
    vocab = vocabulary(vocab_path)

    with console.status("loading data"):
        task = load_text_data(data_config)
    monitor = "mlm_loss" if task.kind == "mlm" else data_config.monitor
    if task.kind != "mlm" and monitor not in metric_names(task.metric):
        raise ConfigError(f"data.monitor={monitor!r}; {data_config.name} reports {', '.join(metric_names(task.metric))}")

    num_labels = len(task.label_names)
    init_report = None
    if init:
        model, init_report = initialise(
            str(init), backbone_config, task.kind, num_labels, data_config.max_length, data_config.name,
            output_root=resolved["output_root"],
        )
    else:
        model = build_for_task(backbone_config.bigs_config(vocab_size=vocab.size), task.kind, num_labels)
    if model.config.max_position_embeddings < data_config.max_length:
        raise ConfigError(
            f"backbone.max_position_embeddings={model.config.max_position_embeddings} < data.max_length={data_config.max_length}"
        )

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved)))
    checkpoint_extra = {
        "bigs_config": asdict(model.config),
        "task": task.kind,
        "data": data_config.name,
        "label_names": task.label_names,
        "config": resolved,
    }
    tokenize_started = time.perf_counter()
    if task.kind == "mlm":
        with console.status("tokenizing the corpus"):
            blocks, block_reports = {}, {}
            for split, documents in task.splits.items():
                blocks[split], block_reports[split] = build_blocks(documents, data_config.max_length, vocab, vocab_path)
        task.report["blocks"] = block_reports
        tokenize_seconds = time.perf_counter() - tokenize_started
        result = pretrain(
            model, blocks, vocab, trainer_config, run_dir, seed, checkpoint_extra, bool(cfg.quiet), console,  # type: ignore[arg-type]
            resume=bool(resolved.get("resume", True)), identity=identity,
        )
        epochs = round(result["tokens_seen"] / max(1, blocks["train"].numel()), 2)  # passes over the corpus
        masking = (trainer_config.mlm_probability, trainer_config.max_predictions, DEV_MASK_SEED,
                   dev_batch_size(trainer_config, data_config.max_length))
        result["unigram_baseline"] = unigram_baseline(blocks["train"], blocks["eval"], vocab, *masking)
        result["context_free_baseline"] = context_free_baseline(blocks["train"], blocks["eval"], vocab, *masking)
        budget = trainer_config.pretrain_budget(result["steps"], data_config.max_length)
        reporting = "dev split with one fixed masking; best.pt = lowest dev MLM loss, last.pt = final (resumable)"
    else:
        with console.status("tokenizing"):
            encoded = {
                split: encode_examples(examples, data_config.max_length, data_config.truncation, vocab_path)
                for split, examples in task.splits.items()
            }
        task.report["truncated"] = {split: tensors.truncated for split, tensors in encoded.items()}
        tokenize_seconds = time.perf_counter() - tokenize_started
        labels = {split: [example.label for example in examples] for split, examples in task.splits.items()}
        result = finetune(
            model,
            task.kind,
            encoded,
            labels,
            lambda gold, predicted: score_text_task(task.metric, gold, predicted),
            monitor,
            trainer_config,
            run_dir,
            seed,
            vocab.pad,
            checkpoint_extra,
            bool(cfg.quiet),
            identity=identity,
            resume=bool(resolved.get("resume", True)),
        )
        budget = trainer_config.finetune_budget()
        epochs = result["history"][-1]["epoch"]
        reporting = FINETUNE_REPORTING

    best = result["best"]
    record = RunRecord(
        status="finished",
        **identity,
        family="bigs",
        data=data_config.name,
        model=model_label(cfg),
        seed=seed,
        budget=budget,
        metrics=result["metrics"],
        parameters=parameter_counts(model),
        provenance=provenance(torch.device(result["device"])),
        run_dir=str(run_dir),
        wall_seconds=time.perf_counter() - started,
        history=result["history"],
        details={
            "variant": f"{model.config.arch}+{model.config.routing}",
            # what precision=auto turned into on this machine (bf16 autocast only where the CPU has it natively)
            "precision": resolve_precision(trainer_config.precision, torch.device(result["device"])),
            "task": task.kind,
            "epochs": epochs,
            "reporting": reporting,
            "best": {**best, "metrics": normalise_metrics(best["metrics"])} if best and "metrics" in best else best,
            "monitor": monitor,
            "steps": result["steps"],
            "tokens_seen": result.get("tokens_seen"),
            "snapshots": result.get("snapshots", []),
            "cost": result.get("cost"),
            "unigram_baseline": result.get("unigram_baseline"),
            "context_free_baseline": result.get("context_free_baseline"),
            "resumed_from_step": result.get("resumed_from_step"),
            "resumed_from_epoch": result.get("resumed_from_epoch"),
            "init": init_report,
            "bigs_config": asdict(model.config),
            "optimizer_groups": result["optimizer_groups"],
            "warmup_steps": result["warmup_steps"],
            "data_report": task.report,
            "timings": {"tokenize_seconds": tokenize_seconds, "train_seconds": result["train_seconds"]},
        },
    ).to_json()
    write_json_atomic(run_dir / "metrics.json", record)
    store.append(resolved["output_root"], {key: value for key, value in record.items() if key != "history"})
    print_summary(record, console)
    return record


def print_summary(record: dict[str, Any], console: Console) -> None:
    record = RunRecord.from_json(record).to_json()  # a finished record of any age, in today's layout
    table = Table(title=f"{record['data']} · {record['model']} ({record['variant']}) · {record['budget']}")
    table.add_column("split")
    table.add_column("when")
    whole = {split: groups[WHOLE_SPLIT] for split, groups in record["metrics"].items()}
    if record["task"] == "mlm":
        names = ["mlm_loss", "mlm_accuracy", "perplexity"]
        rows = [(SELECTION_SPLIT, f"step {record['steps']:,}", whole[SELECTION_SPLIT])]
    else:
        names = [name for name in whole[SELECTION_SPLIT] if name != "examples"]
        last_epoch = record["history"][-1]["epoch"]
        rows = [(split, f"final (epoch {last_epoch})", scores) for split, scores in whole.items()]
        best = record["best"]
        rows += [(split, f"best (epoch {best['epoch']})", groups[WHOLE_SPLIT])
                 for split, groups in normalise_metrics(best["metrics"]).items()]
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    for split, when, scores in rows:
        table.add_row(split, when, *(f"{scores[name]:.2f}" for name in names))
    console.print(table)
    parameters = record["parameters"]
    tokens = f", {record['tokens_seen']:,} tokens" if record.get("tokens_seen") else ""
    console.print(
        f"parameters {parameters['total']:,} (encoder {parameters['encoder']:,}, embeddings {parameters['embeddings']:,}, "
        f"head {parameters['head']:,}), {record['steps']:,} steps{tokens}, {record['wall_seconds']:.0f} s on "
        f"{record['provenance']['device']}"
    )
    if record.get("init"):
        console.print(f"initialised from {record['init']['file']} ({record['init']['architecture']})")
    console.print(f"run folder: {record['run_dir']}")
    if record["task"] == "mlm":  # how a fine-tune names this pretraining (bigs/checkpoints.py)
        console.print(f"fine-tune from it with init=run:{record['config_hash']}")
