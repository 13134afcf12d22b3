"""`bench speed projections`: the training step of each Table 1 projection through each bottleneck path.

MinHash gives each word n active buckets; Binary, SimHash and TSP give a value to hundreds or all of the F
buckets of a word, so the bottleneck's cost depends on the path (pnlp_bench/mixer/models/bottleneck.py):
"bag" sums one weight row per active bucket and position (embedding_bag, a scattered backward), "words" builds
one dense vector per word and multiplies it by the stacked weight once, "dense" scatters every position's
window into a (2w+1)·F buffer and multiplies that. Each projection's model is `bench run model=mixer_<preset>
projection=<name>` on the embedded MTOP sample; every path of a projection trains a copy of the same model
with its own Adam, and the paths take turns in timed repetitions (harness.interleaved_rates), so a ratio shares
the machine's background load. Writes <output>.md and <output>.json.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pnlp_bench.commands.speed.harness import (
    choose_threads, hardware, interleaved_rates, parse_overrides, progress_log, provenance_lines, warm_up, write_report,
)
from pnlp_bench.core.compose import compose, options
from pnlp_bench.core.device import resolve_precision
from pnlp_bench.core.paths import asset
from pnlp_bench.core.provenance import provenance
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import featurize
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.models.bottleneck import PAD, PATHS
from pnlp_bench.mixer.projection.base import PROJECTIONS
from pnlp_bench.mixer.trainer import TrainerConfig, make_optimizer, train_step

COMMAND = "bench speed projections"
TIMED_PATHS = tuple(path for path in PATHS if path != "auto")


@dataclass
class ProjectionSpeedConfig:
    projections: list[str] = field(default_factory=lambda: ["minhash", "binary", "simhash", "tsp"])
    paths: list[str] = field(default_factory=lambda: ["bag", "words", "dense"])
    preset: str = "base"  # model=mixer_<preset>: F, w, B and the mixer
    batch_size: int = 256  # the paper's
    max_length: int = 64  # S of MTOP
    precision: str = "auto"  # as the trainer: bf16 autocast on CPUs with native bf16, else fp32
    warmup: int = 1  # untimed steps first; the last one's time sizes the timed repetitions
    repeats: int = 5
    repeat_seconds: float = 1.5
    threads: int = 0  # 0 = auto (harness.choose_threads)
    seed: int = 0
    output: str = "results/speed_projections"
    quiet: bool = False

    def validate(self) -> None:
        unknown = [name for name in self.projections if name not in PROJECTIONS.names() or name == "bert"]
        if unknown or not self.projections:
            raise ConfigError(f"{COMMAND}: projections must be of {', '.join(n for n in PROJECTIONS.names() if n != 'bert')}, "
                              f"got {self.projections}")
        bad = [path for path in self.paths if path not in TIMED_PATHS]
        if bad or not self.paths:
            raise ConfigError(f"{COMMAND}: paths must be of {', '.join(TIMED_PATHS)}, got {self.paths}")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ConfigError(f"{COMMAND}: precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.batch_size < 1 or self.max_length < 1 or self.repeats < 1 or self.warmup < 1 or self.repeat_seconds <= 0:
            raise ConfigError(f"{COMMAND}: batch_size, max_length, repeats and warmup >= 1, repeat_seconds > 0")


QUICK = {"projections": ["minhash", "binary"], "paths": ["bag", "words"], "repeats": 2, "repeat_seconds": 0.5}


def measure(config: ProjectionSpeedConfig, name: str, log) -> dict[str, Any]:
    from pnlp_bench.mixer.pipeline import build_model

    cfg = compose([f"model=mixer_{config.preset}", f"projection={name}"])
    projection_options = options(cfg.projection)
    projection = PROJECTIONS.build(projection_options.pop("name"), projection_options, "projection")
    loaded = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"]))
    data = featurize({"train": loaded.splits["train"]}, projection, config.max_length)
    data_config = DataConfig(name="mtop", max_length=config.max_length)
    torch.manual_seed(config.seed)
    model = build_model(cfg, data_config, data)
    device = torch.device("cpu")
    trainer = TrainerConfig(precision=resolve_precision(config.precision, device), device="cpu")
    table = data.word_table
    active = (table.indices != PAD) if table.values is None else (table.values != 0)
    available = len(data.splits["train"])
    order = torch.randperm(available, generator=torch.Generator().manual_seed(config.seed))
    batch_size = min(config.batch_size, available)

    def step_for(path: str):
        copied = copy.deepcopy(model)
        copied.bottleneck.path = path
        optimizer = make_optimizer(copied, trainer, device)

        def step(index: int) -> None:
            start = (index * batch_size) % (available - batch_size + 1)
            train_step(copied, optimizer, data.batch("train", order[start : start + batch_size], device), trainer, device)

        return step

    steps = {path: step_for(path) for path in config.paths}
    warm = {path: warm_up(step, config.warmup, device) for path, step in steps.items()}
    log(f"{name}: warm step " + ", ".join(f"{path} {seconds:.3f} s" for path, seconds in warm.items()))
    timed = interleaved_rates({path: (steps[path], batch_size, warm[path]) for path in steps}, device,
                              config.repeats, config.repeat_seconds, first_index=config.warmup)
    rates = {path: timed[path]["samples_per_second"]["median"] for path in steps}
    baseline = "bag" if "bag" in steps else config.paths[0]
    pairs = {path: [a / b for a, b in zip(timed[path]["repeats"], timed[baseline]["repeats"])] for path in steps}
    weighted = table.values is not None
    return {
        "projection": name, "feature_size": int(model.bottleneck.feature_size), "window": int(model.bottleneck.window),
        "bottleneck": int(model.bottleneck.out_dim), "weighted": weighted,
        "active_per_word": float(active.sum(dim=1).float().mean()),
        "auto_path": auto_path(model, device, weighted, trainer.precision), "batch_size": batch_size,
        "precision": trainer.precision,
        "samples_per_second": rates, "timed": timed, "baseline": baseline,
        "ratio_to_baseline": {path: statistics.median(values) for path, values in pairs.items()},
    }


def auto_path(model, device: torch.device, weighted: bool, precision: str) -> str:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return model.bottleneck.resolved_path(device, weighted=weighted)


def render_markdown(result: dict[str, Any]) -> str:
    config = result["config"]
    paths = config["paths"]
    lines = [
        "# Training step per projection and bottleneck path (`bench speed projections`)",
        "",
        f"Command: `{result['command']}`.",
        *provenance_lines(result["provenance"], result["hardware"], "no GPU."),
        "",
        f"model=mixer_{config['preset']} with each projection, {result['rows'][0]['precision'] if result['rows'] else config['precision']} "
        f"(`trainer.precision=auto` resolved as the trainer does), batch {config['batch_size']}, S = {config['max_length']}, "
        "on the embedded MTOP sample; one training step (forward, loss, backward, Adam) of a copy of the same model "
        f"per path, the paths interleaved over {config['repeats']} timed repetitions of at least {config['repeat_seconds']} s; "
        "samples/s is the median repetition, a ratio the median of the paired repetitions' ratios. 'auto' is the path "
        "`bottleneck.path=auto` takes on this CPU at that precision.",
        "",
        "| projection | F x (2w+1) | active buckets per word | auto | " + " | ".join(f"{p} samples/s" for p in paths)
        + " | " + " | ".join(f"{p} / {result['rows'][0]['baseline'] if result['rows'] else 'bag'}" for p in paths) + " |",
        "|" + "---|" * (4 + 2 * len(paths)),
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['projection']} | {row['feature_size']:,} x {2 * row['window'] + 1} | {row['active_per_word']:.0f} | {row['auto_path']} | "
            + " | ".join(f"{row['samples_per_second'][p]:,.0f}" for p in paths) + " | "
            + " | ".join(f"{row['ratio_to_baseline'][p]:.2f}x" for p in paths) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog=COMMAND, description=__doc__.split("\n\n")[0],
        epilog="options as key=value: " + ", ".join(f.name for f in dataclasses.fields(ProjectionSpeedConfig)),
    )
    parser.add_argument("--quick", action="store_true", help="minhash and binary, bag and words, two short repetitions")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. projections=[binary,tsp] paths=[bag,words] threads=1")
    args = parser.parse_args(list(argv))
    config: ProjectionSpeedConfig = parse_overrides(ProjectionSpeedConfig, QUICK if args.quick else None, args.overrides, COMMAND)
    config.validate()
    threads_reason = choose_threads(config.threads)
    device = torch.device("cpu")
    log = progress_log(config.quiet)
    command = " ".join([COMMAND, *(["--quick"] if args.quick else []), *args.overrides])
    result: dict[str, Any] = {"command": command, "provenance": provenance(device), "hardware": hardware(device),
                              "config": dataclasses.asdict(config), "rows": []}
    result["hardware"]["torch_threads_reason"] = threads_reason
    for name in config.projections:  # the report is rewritten after each projection: an interrupted run keeps its rows
        result["rows"].append(measure(config, name, log))
        json_path, md_path = write_report(result, config.output, render=render_markdown)
    print(f"wrote {md_path} and {json_path}")
    return 0
