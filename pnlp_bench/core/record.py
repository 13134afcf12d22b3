"""The run record both families write: one typed shape, one metrics layout.

`metrics[split][group][metric]`: `split` is `train`, `eval` (the selection split: MTOP's eval files, GLUE's
dev set) or `test`; `group` a language code, or `avg` for the whole split (the unweighted mean over
languages where a split has several, the papers' average); `metric` a name such as `exact_match`. int8
copies of pNLP-Mixer models keep the same layout under `metrics_int8`. Each family adds its own fields
(`details`), which sit beside the common ones in the JSON.

Records written before this layout (BiGS: `metrics[split][metric]` with the selection split called `dev`)
read into it through `RunRecord.from_json`, so tables and reports read one layout whatever the record's age.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pnlp_bench.core import store
from pnlp_bench.core.compose import config_identity

SELECTION_SPLIT = "eval"
WHOLE_SPLIT = "avg"
# names the selection split had in older records and in data sets' own files
SPLIT_ALIASES = {"dev": SELECTION_SPLIT}

Metrics = dict[str, dict[str, dict[str, Any]]]


def split_name(split: str) -> str:
    return SPLIT_ALIASES.get(split, split)


def group_name(group: str | None) -> str:
    """A table column's language: empty (a single-language task) means the whole split."""
    return group or WHOLE_SPLIT


def normalise_metrics(metrics: dict[str, Any] | None) -> Metrics:
    """Any recorded metrics in `metrics[split][group][metric]`, splits under their one name."""
    normalised: Metrics = {}
    for split, scores in (metrics or {}).items():
        if not isinstance(scores, dict):
            continue
        by_group = scores if scores and all(isinstance(value, dict) for value in scores.values()) else {WHOLE_SPLIT: scores}
        normalised[split_name(split)] = by_group
    return normalised


EPOCH_PARTS = ("train_seconds", "eval_seconds", "checkpoint_seconds", "gather_seconds")


def epoch_seconds(row: dict[str, Any]) -> float:
    """The measured seconds of one history row (training, evaluation, checkpoint and gathering)."""
    return sum(float(row.get(part) or 0.0) for part in EPOCH_PARTS)


def compute_seconds(raw: dict[str, Any]) -> float:
    """The compute behind a record: its own wall time, plus, for a run resumed from a checkpoint, the measured
    seconds of the epochs earlier processes did (its history keeps them); `wall_seconds` alone counts only the
    last process."""
    earlier = raw.get("resumed_from_epoch") or 0
    before = sum(epoch_seconds(row) for row in raw.get("history") or []
                 if isinstance(row, dict) and (row.get("epoch") or 0) <= earlier)
    return float(raw.get("wall_seconds") or 0.0) + before


@dataclass
class RunRecord:
    status: str
    config_hash: str
    code_version: str
    family: str
    data: str
    model: str
    seed: int
    budget: str
    metrics: Metrics
    parameters: dict[str, int]
    provenance: dict[str, Any]
    run_dir: str
    wall_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = normalise_metrics(self.metrics)
        if "metrics_int8" in self.details:
            self.details["metrics_int8"] = normalise_metrics(self.details["metrics_int8"])

    def to_json(self) -> dict[str, Any]:
        common = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "details"}
        clash = set(common) & set(self.details)
        if clash:
            raise ValueError(f"run record: family fields shadow common ones: {', '.join(sorted(clash))}")
        ordered: dict[str, Any] = {}
        for name, value in common.items():
            ordered[name] = value
            if name == "metrics" and "metrics_int8" in self.details:  # the int8 copy's numbers beside the fp32 ones
                ordered["metrics_int8"] = self.details["metrics_int8"]
        return {**ordered, **{key: value for key, value in self.details.items() if key not in ordered}}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "RunRecord":
        names = {item.name for item in fields(cls)} - {"details"}
        common = {name: raw.get(name) for name in names}
        common["family"] = common["family"] or ("bigs" if "bigs_config" in raw else "mixer")
        common["history"] = common["history"] or []
        return cls(**common, details={key: value for key, value in raw.items() if key not in names})

    def metric(self, split: str, group: str | None, name: str, int8: bool = False) -> float | None:
        """One number, or None where the record has none (a failed or partial run, a column it lacks)."""
        metrics = self.details.get("metrics_int8", {}) if int8 else self.metrics
        return metrics.get(split_name(split), {}).get(group_name(group), {}).get(name)


def run_identity(cfg: DictConfig) -> dict[str, str]:
    """The run's identity (pnlp_bench/core/identity.py): the run folder, the store and the tables key on it."""
    return {"config_hash": config_identity(cfg), "code_version": store.code_version()}


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


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global generators, from one seed."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
