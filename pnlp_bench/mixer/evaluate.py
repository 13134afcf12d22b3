"""`bench eval RUN_DIR [overrides]`: a finished pNLP-Mixer run's best checkpoint scored on other data (another
language, data set or split) without training, e.g. trained on MTOP English, tested on German:
`bench eval outputs/runs/mtop/mixer_base-… data.languages=[de] split=test`.

What it evaluates on: the run's own data config, or the data group `data=NAME` names (composed as `bench run`
composes it), with `data.<key>=…` overrides on top, checked by the same typed config as a run (an unknown key
is one line naming the valid ones). The model fixes what belongs to it: the sequence length
(`data.max_length`), the head and its decoder (`data.head_options`). `trainer.precision` and the speed
options (`trainer.device`, `trainer.eval_batch_size`, …) and `quantize.*` may be set too; the rest of
`trainer` is the run's.

Labels are matched by name onto the run's label space. An example whose gold label the model never saw
counts as wrong (it cannot be predicted), a gold tag it never saw leaves a slot it cannot find; the record
counts both (`evaluation.unknown_labels`, `evaluation.unknown_tags`).

The result is a run record of its own (status finished) in `RUN_DIR/eval/<identity>/metrics.json`, beside the
predictions (`predictions.jsonl`, mixer/predictions.py), and in the local store: its identity hashes the
source run's identity, the evaluated data config and split, so a table can cite it, and the same evaluation
asked again is skipped as finished.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from pnlp_bench.core import store
from pnlp_bench.core.atomic import write_json_atomic
from pnlp_bench.core.compose import compose, options
from pnlp_bench.core.identity import IGNORED, with_keys_of_then
from pnlp_bench.core.provenance import code_state, provenance
from pnlp_bench.core.record import RunRecord, finished_record, split_name
from pnlp_bench.core.registry import ConfigError, typed_config
from pnlp_bench.core.run_lock import hold_run_folder
from pnlp_bench.mixer.data.base import LOADERS, SPLITS, DataConfig
from pnlp_bench.mixer.data.features import LabelSpace, featurize
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.metrics import scorer
from pnlp_bench.mixer.pipeline import load_trained
from pnlp_bench.mixer.predictions import PREDICTIONS, PREDICTIONS_INT8, write_predictions
from pnlp_bench.mixer.quantize import QuantizeConfig, int8_copy
from pnlp_bench.mixer.trainer import TrainerConfig, predict

# What the model itself fixes: its sequence length, its head and the head's decoder.
MODEL_DATA_KEYS = ("max_length", "head", "head_options")
# trainer keys an evaluation may set: how fast it runs, and the autocast precision it predicts in
TRAINER_KEYS = ("device", "eval_batch_size", "eval_max_positions", "num_threads", "host_allocator", "precision")


@dataclass
class EvalPlan:
    """Everything an evaluation is a function of, parsed and checked before any data is read."""

    run_dir: Path
    source: dict[str, Any]  # the run's finished record
    data_name: str  # the data group's name (the run's own, or data=…)
    data: dict[str, Any]  # the resolved data config evaluated on
    split: str
    trainer: TrainerConfig
    quantize: QuantizeConfig
    identity: dict[str, str]

    @property
    def eval_dir(self) -> Path:
        return self.run_dir / "eval" / self.identity["config_hash"]


def source_record(run_dir: Path) -> dict[str, Any]:
    """The finished record of a pNLP-Mixer run folder, or one line saying why there is none."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder (bench runs lists them)")
    path = run_dir / "metrics.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{path}: no readable run record; bench eval scores the best checkpoint of a finished run") from None
    if record.get("status") != "finished":
        raise ConfigError(f"{run_dir}: the run is {record.get('status', 'unfinished')}, not finished; bench eval needs a finished run")
    if record.get("family", "mixer") != "mixer" or "bigs_config" in record:
        raise ConfigError(f"{run_dir}: a BiGS run; bench eval serves pNLP-Mixer runs")
    if not (run_dir / "best.pt").is_file():
        raise ConfigError(f"{run_dir / 'best.pt'}: no checkpoint (removed?); bench eval scores a run's best.pt")
    return record


def parse_overrides(arguments: list[str]) -> list[tuple[str, Any]]:
    """(key, value) of `key=value` arguments, values read as `bench run` reads them (Hydra's override grammar)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
    except HydraException as error:
        raise ConfigError(f"bench eval: {str(error).strip().splitlines()[0]}") from None
    return [(override.key_or_group, override.value()) for override in parsed]


def _set(node: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[leaf] = value


def _composed_data(name: str) -> dict[str, Any]:
    """The data group `name` as `bench run data=NAME` composes it (resolved)."""
    from hydra.errors import HydraException

    try:
        return options(compose([f"data={name}"]).data)
    except HydraException as error:
        from importlib import resources

        available = sorted(path.name.removesuffix(".yaml") for path in (resources.files("pnlp_bench.conf") / "data").iterdir()
                           if path.name.endswith(".yaml"))
        if f"data/{name}" in str(error):
            raise ConfigError(f"data={name}: no such data config; available: {', '.join(available)}") from None
        raise ConfigError(f"data={name}: {str(error).strip().splitlines()[0]}") from None


def plan_evaluation(run_dir: Path, arguments: list[str]) -> EvalPlan:
    """The evaluation `bench eval RUN_DIR <arguments>` asks for, every key checked (one line on a wrong one)."""
    source = source_record(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir / 'config.yaml'}: missing; bench eval reads the run's resolved config there")
    # the run's config as today's keys (a run from before data.max_words became data.max_length reads too)
    config = with_keys_of_then(OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True))
    overrides = parse_overrides(arguments)
    split, data_name = "test", str(source.get("data") or config["data"]["name"])
    data = copy.deepcopy(config["data"])
    trainer, quantize = dict(config["trainer"]), dict(config.get("quantize") or {})
    named = [value for key, value in overrides if key == "data"]
    if named:  # a data group of its own: composed as a run composes it, the run's own data config left aside
        data_name = str(named[-1])
        data = _composed_data(data_name)
    for key, value in overrides:
        group, _, rest = key.partition(".")
        if key == "data":
            continue
        if key == "split":
            split = split_name(str(value))
            if split not in SPLITS:
                raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {value!r}")
        elif group == "data" and rest:
            if rest.split(".")[0] in MODEL_DATA_KEYS:
                raise ConfigError(f"{key}: the run's model fixes data.{rest.split('.')[0]} "
                                  f"({config['data'][rest.split('.')[0]]!r}); bench eval keeps the run's")
            _set(data, rest, value)
        elif group == "trainer" and rest in TRAINER_KEYS:
            trainer[rest] = value
        elif group == "quantize" and rest:
            quantize[rest] = value
        else:
            raise ConfigError(
                f"bench eval: unknown override {key!r}; it takes data=NAME, data.<key>=…, split=train|eval|test, "
                f"trainer.<{'|'.join(TRAINER_KEYS)}>=…, quantize.<key>=…"
            )
    if data.get("head", config["data"]["head"]) != config["data"]["head"]:
        raise ConfigError(f"data={data_name} has a {data['head']!r} head; the run's model has a {config['data']['head']!r} head")
    data.update({key: config["data"][key] for key in MODEL_DATA_KEYS})
    checked = typed_config(DataConfig, data, "data")
    LOADERS.parse(checked.name, checked.options, "data.options")
    trainer_config = typed_config(TrainerConfig, trainer, "trainer")
    quantize_config = typed_config(QuantizeConfig, quantize, "quantize")
    identity = eval_identity(source, data, split, trainer_config, quantize_config)
    return EvalPlan(run_dir, source, data_name, data, split, trainer_config, quantize_config, identity)


def eval_identity(source: dict[str, Any], data: dict[str, Any], split: str, trainer: TrainerConfig,
                  quantize: QuantizeConfig) -> dict[str, str]:
    """The evaluation's identity: the source run's (config hash + code version), the data config (less the keys
    that only say where it lives: core/identity.py's IGNORED), the split, and what changes predictions here."""
    payload = {
        "source": [source["config_hash"], source["code_version"]],
        "data": {key: value for key, value in data.items() if f"data.{key}" not in IGNORED},
        "split": split,
        "precision": trainer.precision,
        "int8": dataclasses.asdict(quantize) if quantize.int8 else False,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"config_hash": digest, "code_version": store.code_version()}


def unknown_to_model(examples: list, labels: LabelSpace) -> dict[str, Any]:
    """How many examples carry a gold label, and a gold tag, that the model's label space lacks (by name)."""
    known_labels, known_tags = set(labels.labels), set(labels.tags)
    label_names = Counter(example.label for example in examples if example.label not in known_labels)
    tag_names: Counter[str] = Counter()
    tagged_examples = 0
    for example in examples:
        unknown = [tag for tag in (example.tags or []) if known_tags and tag not in known_tags]
        tag_names.update(unknown)
        tagged_examples += bool(unknown)
    return {
        "unknown_labels": {"examples": sum(label_names.values()), "names": dict(label_names.most_common())},
        "unknown_tags": {"examples": tagged_examples, "words": sum(tag_names.values()), "names": dict(tag_names.most_common())},
    }


def evaluate(plan: EvalPlan, output_root: Path, quiet: bool = True) -> tuple[dict[str, Any], bool]:
    """The evaluation's record, and whether it ran now (False: an identical evaluation had finished)."""
    previous = finished_record(plan.eval_dir, plan.identity)
    if previous is not None:
        return previous, False
    started, code = time.perf_counter(), code_state()
    model, projection, model_data, labels = load_trained(plan.run_dir)
    data_config = typed_config(DataConfig, plan.data, "data")
    loaded = load_data(data_config)
    examples = loaded.splits[plan.split]
    if not examples:
        raise ConfigError(f"data={plan.data_name} {plan.split} split: no examples for languages {data_config.languages}")
    # the model's projection state and label space: nothing is fitted again, unknown names map to IGNORE
    featurized = featurize({plan.split: examples}, projection, model_data.max_length, labels=labels, fit=False)
    device = plan.trainer.resolved_device()
    if plan.trainer.num_threads:  # as the run trained and scored: bf16 sums can differ with the thread count
        torch.set_num_threads(plan.trainer.num_threads)
    model.to(device)
    score = scorer(model_data.head)
    predicted = predict(model, featurized, plan.split, plan.trainer, device)
    int8: dict[str, Any] = {}
    plan.eval_dir.mkdir(parents=True, exist_ok=True)
    with hold_run_folder(plan.eval_dir):
        write_predictions(plan.eval_dir / PREDICTIONS, [(plan.split, examples, predicted)])
        if plan.quantize.int8:
            quantized, report = int8_copy(model, plan.quantize.mode)
            dynamic = plan.quantize.mode == "dynamic"
            settings = dataclasses.replace(plan.trainer, precision="fp32") if dynamic else plan.trainer
            predicted_int8 = predict(quantized, featurized, plan.split, settings, torch.device("cpu") if dynamic else device)
            write_predictions(plan.eval_dir / PREDICTIONS_INT8, [(plan.split, examples, predicted_int8)])
            int8 = {"metrics_int8": {plan.split: score(examples, predicted_int8)}, "quantization": report,
                    "predictions_int8": PREDICTIONS_INT8}
        source = plan.source
        record = RunRecord(
            status="finished",
            **plan.identity,
            family="mixer",
            data=plan.data_name,
            model=source.get("model", "custom"),
            seed=int(source.get("seed", 0)),
            budget=f"evaluation of {source['config_hash']}",
            metrics={plan.split: score(examples, predicted)},
            parameters=source.get("parameters", model.parameter_counts()),
            provenance=provenance(device, code),
            run_dir=str(plan.eval_dir),
            wall_seconds=time.perf_counter() - started,
            details={
                **int8,
                "monitor": source.get("monitor", data_config.monitor),
                "predictions": PREDICTIONS,
                "evaluation": {
                    "source": {key: source.get(key) for key in ("config_hash", "code_version", "run_dir", "data", "best_epoch")},
                    "data": plan.data,
                    "split": plan.split,
                    "precision": plan.trainer.precision,
                    "examples": len(examples),
                    **unknown_to_model(examples, labels),
                    "truncated_to_max_length": featurized.splits[plan.split].truncated,
                },
                "data_report": loaded.report,
            },
        ).to_json()
        write_json_atomic(plan.eval_dir / "metrics.json", record)
    store.append(output_root, record)
    return record, True
