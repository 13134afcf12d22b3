"""Optional experiment loggers. `logger=none` (default) imports nothing; `logger=wandb` imports wandb lazily."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pnlp_bench.core.registry import ConfigError, Registry


class RunLogger(Protocol):
    def log_epoch(self, entry: dict[str, Any]) -> None: ...

    def finish(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


LOGGERS: Registry[RunLogger] = Registry("logger")


@dataclass
class NoLoggerConfig:
    pass


class NoLogger:
    def log_epoch(self, entry: dict[str, Any]) -> None:
        pass

    def finish(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


WANDB_MODES = (None, "online", "offline", "disabled")  # null: wandb's own default (WANDB_MODE)


@dataclass
class WandbConfig:
    project: str = "pnlp-bench"
    entity: str | None = None
    group: str | None = None  # null: the run's table cell (data/model-<identity without the seed>), so seeds group
    tags: list[str] = field(default_factory=list)
    mode: str | None = None  # null: wandb's own default (WANDB_MODE); or online / offline / disabled

    def validate(self, where: str) -> None:
        # wandb.init would refuse another mode only after the data has loaded and the model is built
        if self.mode not in WANDB_MODES:
            raise ConfigError(f"{where}.mode must be online, offline, disabled or null, got {self.mode!r}")


class WandbLogger:
    """One wandb run per run identity: its id is the identity (config hash and code version), with
    resume="allow", so a resumed `bench run` continues the same wandb run rather than starting a second one."""

    def __init__(self, config: WandbConfig, run_config: dict[str, Any], run_dir: Path, run_name: str, run_id: str,
                 group: str) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=config.project, entity=config.entity, group=config.group or group, tags=list(config.tags),
            mode=config.mode, config=run_config, dir=str(run_dir), name=run_name, id=run_id, resume="allow",
            reinit="finish_previous",
        )

    def log_epoch(self, entry: dict[str, Any]) -> None:
        self.run.log(entry, step=entry["epoch"])

    def finish(self, record: dict[str, Any]) -> None:
        rows = [
            [split, lang, name, value]
            for split, by_language in record["metrics"].items()
            for lang, scores in by_language.items()
            for name, value in scores.items()
        ]
        self.run.log({"final_metrics": self.wandb.Table(columns=["split", "language", "metric", "value"], data=rows)})
        for split, by_language in record["metrics"].items():
            for name, value in by_language["avg"].items():
                self.run.summary[f"{split}/{name}"] = value
        self.run.summary["parameters"] = record["parameters"]["total"]

    def close(self) -> None:
        self.run.finish()


@LOGGERS.register("none", NoLoggerConfig)
def build_none(config: NoLoggerConfig, **_: Any) -> NoLogger:
    return NoLogger()


@LOGGERS.register("wandb", WandbConfig)
def build_wandb(config: WandbConfig, run_config: dict[str, Any], run_dir: Path, run_name: str, run_id: str,
                group: str) -> WandbLogger:
    return WandbLogger(config, run_config, run_dir, run_name, run_id, group)
