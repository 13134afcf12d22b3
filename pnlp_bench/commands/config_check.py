"""Every typed config of a composed `bench run`, checked before Hydra makes a run folder.

`check_config` parses each node of a composed config into its dataclass, the way the run will: the type of
every field first, then its values (the dataclass's `validate`). `ConfigCheck`, a Hydra callback named in
`conf/config.yaml`, calls it on the composed config of a run, and on every job of a basic sweep before the
first job starts, so a wrong key or value ends `bench run` with one line and exit code 2, leaving no run
folder, no record and no store line. `run()` calls `check_config` too, for the jobs of sweepers that choose
their own values (optuna) and for callers that bypass Hydra.

The callback also notes where each job of a basic sweep will write its record, so `bench run -m` can name
the jobs that failed whichever launcher ran them (`failed_sweep_jobs`).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from pnlp_bench.core.registry import ConfigError, typed_config
from pnlp_bench.core.schema import RunOptions

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def run_options(resolved: dict[str, Any]) -> RunOptions:
    return typed_config(RunOptions, {field.name: resolved[field.name] for field in fields(RunOptions)
                                     if field.name in resolved}, "")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose type or value the run would refuse (or trip over)."""
    if cfg.backbone.name == "bigs":
        from pnlp_bench.bigs.pipeline import bigs_options, parse_configs, refuse_pnlp_only_options

        refuse_pnlp_only_options(cfg)
        resolved = bigs_options(cfg)
        run_options(resolved)
        parse_configs(resolved)
        return
    from pnlp_bench.mixer.data import loaders  # noqa: F401  (registers every data set)
    from pnlp_bench.mixer.data.base import LOADERS, DataConfig
    from pnlp_bench.core.loggers import LOGGERS
    from pnlp_bench.mixer.models import BACKBONES, HEADS
    from pnlp_bench.mixer.models.bottleneck import BottleneckOptions
    from pnlp_bench.mixer.projection import PROJECTIONS
    from pnlp_bench.mixer.quantize import QuantizeConfig
    from pnlp_bench.mixer.trainer import TrainerConfig

    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    if run_options(resolved).init:
        raise ConfigError("init= starts from a pretrained BiGS encoder; it needs backbone=bigs or a model=bigs_* preset")
    data = typed_config(DataConfig, resolved["data"], "data")
    LOADERS.parse(data.name, data.options, "data.options")
    HEADS.parse(data.head, data.head_options, "data.head_options")
    typed_config(TrainerConfig, resolved["trainer"], "trainer")
    typed_config(QuantizeConfig, resolved["quantize"], "quantize")
    typed_config(BottleneckOptions, resolved["bottleneck"], "bottleneck")
    for group, registry in (("projection", PROJECTIONS), ("backbone", BACKBONES), ("logger", LOGGERS)):
        options = dict(resolved[group])
        registry.parse(options.pop("name"), options, group)


def task_config(config: DictConfig) -> DictConfig:
    """The config a job's task function sees: without the `hydra` node (as Hydra's run_job passes it)."""
    return OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])  # type: ignore[return-value]


def refuse_bad_config(config: DictConfig, job: list[str] | None = None) -> None:
    """One line on stderr and exit code 2, raised as SystemExit: Hydra's callbacks turn an Exception into a
    warning and go on, a SystemExit they let through."""
    try:
        check_config(task_config(config))
    except (ConfigError, OmegaConfBaseException) as error:
        # an interpolation that does not resolve (${oc.env:UNSET}, backbone.arch=1.5 as a key) is a config error too
        message = f"{error.full_key}: {error.msg}" if isinstance(error, OmegaConfBaseException) else str(error)
        where = f" (sweep job: {' '.join(job)})" if job else ""
        print(f"error: {message.splitlines()[0]}{where}", file=sys.stderr)
        raise SystemExit(2) from None


# Where the jobs of this process's last basic sweep write their records (None: no sweep checked yet).
SWEEP_RUN_DIRS: list[Path] | None = None


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The overrides of every job a basic sweep of `config` will launch, in its order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    loader = GlobalHydra.instance().config_loader()
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    arguments = params + list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))  # type: ignore[arg-type]
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def planned_run_dir(job_config: DictConfig, index: int) -> Path:
    """The folder Hydra's run_job will give this job (the launchers set job.num and job.id as here)."""
    with open_dict(job_config.hydra.job):
        job_config.hydra.job.num = index
        job_config.hydra.job.id = f"{job_config.hydra.job.name}_{index}"
    HydraConfig.instance().set_config(job_config)  # the sweep folder interpolates ${hydra:runtime.choices...}
    sweep = job_config.hydra.sweep
    return Path(os.path.abspath(os.path.join(str(sweep.dir), str(sweep.subdir))))


class ConfigCheck(Callback):
    """Checks the composed config of a run, and of every job of a basic sweep, before anything runs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_bad_config(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global SWEEP_RUN_DIRS
        SWEEP_RUN_DIRS = None
        if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
            # another sweeper (optuna) chooses values as it goes: the fixed ones are checked here, each
            # trial's own when its run starts (run() calls check_config)
            refuse_bad_config(config)
            return
        loader = GlobalHydra.instance().config_loader()
        run_dirs = []
        try:
            for index, job in enumerate(sweep_jobs(config)):
                job_config = loader.load_sweep_config(master_config=config, sweep_overrides=job)
                refuse_bad_config(job_config, job)
                run_dirs.append(planned_run_dir(job_config, index))
        finally:
            HydraConfig.instance().set_config(config)
        SWEEP_RUN_DIRS = run_dirs


def failed_sweep_jobs() -> list[str]:
    """'run folder: error' for each job of this process's last basic sweep whose record is not finished.

    Read from the records, which jobs write to their run folders under every launcher, so the answer does
    not depend on the process a job ran in (a joblib worker, a submitit job)."""
    failed = []
    for run_dir in SWEEP_RUN_DIRS or []:
        try:
            record = json.loads((run_dir / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError):
            record = {}
        if record.get("status") != "finished":
            failed.append(f"{run_dir}: {str(record.get('error', 'no record')).splitlines()[0]}")
    return failed
