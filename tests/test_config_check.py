"""A composed config is checked whole before Hydra makes a run folder: every typed field's type, then the
values that obviously have a range, for pNLP-Mixer and BiGS runs alike; and `bench run`'s task function
returns the number Hydra's sweepers optimise."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf, open_dict

from pnlp_bench.bigs.config import BiGSBackboneConfig, BiGSTrainerConfig
from pnlp_bench.commands.config_check import check_config
from pnlp_bench.core.schema import RunOptions
from pnlp_bench.mixer.models.bottleneck import BottleneckOptions
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.bigs.data.text_tasks import TextDataConfig
from pnlp_bench.core.loggers import WandbConfig
from pnlp_bench.mixer.models.mixer import MixerConfig
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.mixer.quantize import QuantizeConfig
from pnlp_bench.core.registry import ConfigError, field_types, matches
from pnlp_bench.mixer.trainer import TrainerConfig

from helpers import compose_config

ROOT = Path(__file__).resolve().parents[1]
BIGS = ["backbone=bigs"]
# (overrides composed first, node, its config class, fields left out: the name picks the class itself;
# arch, routing, depth and width are the keys and tables of the num_layers and intermediate_size
# interpolations: a wrong one fails on resolving, in one line too (test_bad_values_end_bench_run_...))
TYPED_NODES = [
    ([], "trainer", TrainerConfig, ()),
    ([], "data", DataConfig, ("name",)),
    ([], "quantize", QuantizeConfig, ()),
    ([], "bottleneck", BottleneckOptions, ()),
    ([], None, RunOptions, ()),
    ([], "projection", PROJECTIONS.config_class("minhash"), ()),
    ([], "backbone", MixerConfig, ()),
    (["logger=wandb"], "logger", WandbConfig, ()),
    (BIGS, "trainer", BiGSTrainerConfig, ()),
    (BIGS, "data", TextDataConfig, ("name",)),
    (BIGS, "backbone", BiGSBackboneConfig, ("name", "arch", "routing", "depth", "width")),
    (BIGS, None, RunOptions, ()),
]


def wrong_value(annotation: Any) -> Any:
    """A value of another type than the field's: a word, else a fraction, else a list."""
    return next((value for value in ("x", 1.5, [1, 2]) if not matches(value, annotation)), None)


@functools.cache
def composed(overrides: tuple[str, ...]) -> DictConfig:
    return compose_config(list(overrides))


def with_value(overrides: list[str], node: str | None, key: str, value: Any) -> DictConfig:
    cfg = copy.deepcopy(composed(tuple(overrides)))  # composing takes longer than checking: once per base
    target = cfg if node is None else cfg[node]
    with open_dict(target):
        target[key] = value
    return cfg


@pytest.mark.parametrize(
    ("overrides", "node", "key", "value"),
    [
        (overrides, node, field.name, wrong_value(field_types(config_class)[field.name]))
        for overrides, node, config_class, left_out in TYPED_NODES
        for field in dataclasses.fields(config_class)
        if field.name not in left_out and wrong_value(field_types(config_class)[field.name]) is not None
    ],
)
def test_every_typed_field_refuses_a_value_of_another_type(overrides, node, key, value):
    cfg = with_value(overrides, node, key, value)
    where = key if node is None else f"{node}.{key}"
    with pytest.raises(ConfigError, match=rf"^{where} must be .*, got {value!r}$".replace("[", r"\[")):
        check_config(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.lr=0"], "trainer.lr must be > 0, got 0"),
        (["trainer.lr=-1"], "trainer.lr must be > 0, got -1"),
        (["trainer.lr=inf"], "trainer.lr must be > 0, got inf"),
        (["trainer.epochs=0"], "trainer.epochs must be >= 1, got 0"),
        (["trainer.batch_size=0"], "trainer.batch_size must be >= 1, got 0"),
        (["trainer.eval_batch_size=0"], "trainer.eval_batch_size must be >= 1, got 0"),
        (["trainer.eps=0"], "trainer.eps must be > 0, got 0"),
        (["trainer.weight_decay=-0.1"], "trainer.weight_decay must be >= 0, got -0.1"),
        (["trainer.betas=[0.9,1.0]"], "trainer.betas must be two numbers in [0, 1), got [0.9, 1.0]"),
        (["trainer.num_threads=-1"], "trainer.num_threads must be >= 0"),
        (["trainer.device=tpu"], "trainer.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        (["trainer.device=cuda:x"], "trainer.device must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
        (["seed=-1"], "seed must be in [0, 2**32 - 1], got -1"),
        ([f"seed={2**32}"], f"seed must be in [0, 2**32 - 1], got {2**32}"),
        (["logger=wandb", "logger.mode=bogus"], "logger.mode must be online, offline, disabled or null, got 'bogus'"),
        (["bottleneck.word_dropout=1.0"], "bottleneck.word_dropout must be in [0, 1), got 1.0"),
        (["bottleneck.path=sparse"], "bottleneck.path must be auto, bag, dense, words, got 'sparse'"),
        (["init=pretrained:wikitext2"], "init= starts from a pretrained BiGS encoder"),
        (["+data.options.bogus=1"], "data.options: unknown key 'bogus'"),
        (["backbone.num_layers=0"], "backbone.num_layers must be >= 1, got 0"),
        ([*BIGS, "trainer.lr=0"], "trainer.lr must be > 0, got 0"),
        ([*BIGS, "trainer.device=tpu"], "trainer.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        ([*BIGS, "trainer.grad_clip=0"], "trainer.grad_clip must be > 0 or null, got 0"),
        ([*BIGS, "trainer.warmup_steps=-1"], "trainer.warmup_steps must be >= 0 or null, got -1"),
        ([*BIGS, "trainer.ssm_lr=-1"], "trainer.ssm_lr must be > 0 or null, got -1"),
        ([*BIGS, "seed=-1"], "seed must be in [0, 2**32 - 1], got -1"),
    ],
)
def test_values_out_of_range_are_refused(overrides, message):
    with pytest.raises(ConfigError) as refused:
        check_config(compose_config(overrides))
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [[], ["trainer.device=cuda:1"], ["trainer.device=cpu"], ["trainer.lr=1"], ["logger=wandb", "logger.mode=offline"],
     ["trainer.num_threads=2", "seed=4294967295"], [*BIGS, "trainer.warmup_steps=0"], ["task=mlm"]],
)
def test_valid_values_pass(overrides):
    check_config(compose_config(overrides))


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pnlp_bench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path}, timeout=300)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["seed=abc"], "seed must be an integer, got 'abc'"),
        (["trainer.epochs=abc"], "trainer.epochs must be an integer, got 'abc'"),
        (["trainer.lr=fast"], "trainer.lr must be a number, got 'fast'"),
        (["trainer.lr=-1"], "trainer.lr must be > 0, got -1"),
        (["trainer.batch_size=1.5"], "trainer.batch_size must be an integer, got 1.5"),
        (["trainer.device=tpu"], "trainer.device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        (["logger=wandb", "logger.mode=bogus"], "logger.mode must be online, offline, disabled or null, got 'bogus'"),
        ([*BIGS, "trainer.lr=fast"], "trainer.lr must be a number, got 'fast'"),
        # a sweep is checked job by job before its first job starts
        (["--multirun", "trainer.lr=0.001,-1"], "trainer.lr must be > 0, got -1 (sweep job: "),
        ([*BIGS, "backbone.arch=1.5"], "backbone.num_layers: The following interpolation is used to denote a config key"),
        (["trainer.num_threads=${oc.env:H13A_UNSET_VARIABLE}"], "trainer.num_threads: KeyError raised while resolving interpolation: \"Environment variable 'H13A_UNSET_VARIABLE'"),
    ],
)
def test_bad_values_end_bench_run_with_one_line_exit_2_and_nothing_written(tmp_path, arguments, expected):
    output_root = tmp_path / "out"
    done = bench("run", *arguments, f"output_root={output_root}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: {expected}") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not list(tmp_path.iterdir())  # no run folder, no record, no store line, nothing else


def test_the_task_function_returns_the_best_selection_metric(tmp_path):
    """What Hydra's sweepers (optuna) optimise: the best eval-split value of data.monitor, from the record."""
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig

    from pnlp_bench.commands.run import main

    overrides = ["model=mixer_xs", "trainer=smoke", "data.train_limit=100", "data.eval_limit=40", "data.test_limit=40",
                 "data.monitor=intent_accuracy", "quiet=true", f"output_root={tmp_path}"]
    with initialize_config_module(config_module="pnlp_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    task = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])  # as Hydra's run_job passes it
    HydraConfig.instance().set_config(cfg)
    try:
        value = main(task)  # hydra.main calls the task function itself when given a config
        again = main(task)  # a finished run answers from its record
    finally:
        HydraConfig.instance().cfg = None  # later tests in this process see no Hydra run
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert isinstance(value, float) and record["status"] == "finished" and len(record["history"]) == 2
    assert value == max(epoch["eval_intent_accuracy"] for epoch in record["history"]) == again


def test_bigs_records_give_their_selection_metric():
    from pnlp_bench.commands.run import monitored_value

    finetuned = {"best": {"epoch": 2, "monitor": "accuracy", "metrics": {"dev": {"accuracy": 81.5, "examples": 9}}}}
    pretrained = {"best": {"monitor": "mlm_loss", "mlm_loss": 4.25}}
    assert monitored_value(finetuned) == 81.5 and monitored_value(pretrained) == 4.25
