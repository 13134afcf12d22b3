"""`bench speed`: how fast the project's path is against the dense reference, in one process and one report.

Figures (each for the fast path and the dense reference of `pnlp_bench/mixer/reference.py`, with their ratio):
1. featurization throughput (words/s) on real text: MultiATIS++ utterances and IMDB reviews (IMDB from the
   raw text, word pre-tokenization included), plus the cold build of the fingerprint table (in a temporary
   BENCH_CACHE_DIR, so nothing is read from a cache);
2. training throughput (samples/s) and peak memory, per size preset, on multiATIS (S = 64) and IMDB
   (S = 1024). The fast path is the trainer's own step (`pnlp_bench/mixer/trainer.py: train_step`): integer features
   gathered from the word table (resident on the device on CUDA), the bottleneck path picked per device,
   fused Adam and bf16 autocast on CUDA, optional torch.compile. The reference builds dense per-sample
   features on the CPU in the loop, as public code does, and trains a dense `nn.Linear` bottleneck;
3. single-utterance CPU latency (p50, p99) for the presets in `latency_presets`, words in, prediction out
   ("end to end") and model only, fp32, and int8 when `pnlp_bench.mixer.quantize` is importable; beside
   `MixerPredictor`, the same weights exported to ONNX and served by onnxruntime (`pnlp_bench/mixer/export/onnx.py`),
   when onnx and onnxruntime import (the `export` extra; else the report says it was not measured);
4. FLOPs per training sample (counted by torch's FlopCounterMode) against the matmul rate the machine
   sustains, which says whether a target is within reach of this hardware.

Timing: warm-up steps first, then `repeats` timed repetitions of at least `repeat_seconds` each, with CUDA
synchronisation around every timed region; medians are reported (min and max beside them). The machine
may be shared, so fast and reference repetitions alternate and training ratios are taken pair by pair;
latency variants take turns in blocks of consecutive calls. The report goes to `<output>.md` and `<output>.json`
with the hardware, torch version and commit.

This module is the command (its options, targets and the run); the rest lives beside it: `workload.py` (presets,
data sets, models), `figures.py` (the three kinds of figures), `render.py` (ratios, targets, the report) and
`harness.py` (the timing harness `bench speed length` shares).

`bench speed [--quick] [key=value ...]`, e.g. `bench speed presets=[xs,base] device=cpu --quick`.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pnlp_bench.commands.speed.figures import (
    featurization_figures,
    fingerprint_table_cold,
    latency_figures,
    training_figures,
    uses_bf16,
)
from pnlp_bench.commands.speed.harness import (
    choose_threads,
    hardware,
    load_averages,
    parse_overrides,
    peak_matmul_rate,
    progress_log,
    resolve_device,
    write_report,
)
from pnlp_bench.commands.speed.render import add_flop_bounds, print_ratios, ratios, render_markdown, targets
from pnlp_bench.commands.speed.workload import DATASETS, MULTIATIS_LANGUAGES, PRESET_NAMES, PRESETS, Models, load_examples
from pnlp_bench.core.host import prepare_host
from pnlp_bench.core.provenance import provenance
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import Featurized, featurize

# The issues' targets, checked in the report's targets table (`render.py: targets`).
TARGETS = {
    "multiatis_base_train_h100": 300_000.0,
    "imdb_base_train_h100": 20_000.0,
    "imdb_featurize_seconds": 30.0,
    "fingerprint_table_seconds": 10.0,
    "base_latency_p50_ms": 1.0,
    # the CPU speed issue (2 cores): BASE training, X-LARGE and IMDB BASE against the plain path, predictor p50
    "cpu_base_train": 3_400.0,
    "cpu_ratio_to_plain": 5.0,
    "predictor_p50_one_thread_ms": 0.35,
}


@dataclass
class SpeedConfig:
    presets: list[str] = field(default_factory=lambda: list(PRESETS))
    datasets: list[str] = field(default_factory=lambda: ["multiatis", "imdb"])
    device: str = "auto"  # training device: auto (cuda when present), cpu, cuda, cuda:N
    max_length: dict[str, int] = field(default_factory=lambda: {"multiatis": 64, "imdb": 1024, "mtop_sample": 64})  # S per data set
    languages: list[str] = field(default_factory=lambda: list(MULTIATIS_LANGUAGES))  # multiATIS languages
    documents: int = 0  # IMDB training documents featurized and trained on (0 = all 25,000)
    reference_samples: int = 1000  # texts the per-sample reference featurizes per data set (it is slow)
    featurize_preset: str = "base"  # the projection (F, w) of the featurization figures
    batch_size: dict[str, int] = field(default_factory=dict)  # per data set; absent = DEFAULT_BATCH (figures.py)
    reference_batch_size: dict[str, int] = field(default_factory=dict)
    warmup: int = 0  # untimed steps before the timed ones (compilation, caches); 0 = 1 on the CPU, 3 on CUDA
    repeats: int = 5
    repeat_seconds: float = 1.5  # each timed repetition runs whole steps for at least this long
    precision: str = "auto"  # auto: bf16 autocast on cuda and on CPUs with native bf16, else fp32 (as the trainer)
    compile: bool = False  # torch.compile the fast model (the trainer's `trainer.compile`)
    latency_presets: list[str] = field(default_factory=lambda: ["xs", "base"])
    latency_data: str = "multiatis"  # where the utterances of the latency figures come from
    latency_calls: int = 1000
    latency_threads: list[int] = field(default_factory=lambda: [1, 2])
    threads: int = 0  # torch threads for featurization and training; 0 = auto (see choose_threads)
    seed: int = 0
    output: str = "results/speed"  # writes <output>.md and <output>.json
    quiet: bool = False  # no progress lines and no ratio table (`bench --quiet`), for logs

    def validate(self) -> None:
        for name in [*self.presets, *self.latency_presets, self.featurize_preset]:
            if name not in PRESETS:
                raise ConfigError(f"speed: unknown preset {name!r}; valid: {', '.join(PRESETS)}")
        for name in [*self.datasets, self.latency_data]:
            if name not in DATASETS:
                raise ConfigError(f"speed: unknown data set {name!r}; valid: {', '.join(DATASETS)}")
            if name not in self.max_length or self.max_length[name] < 1:
                raise ConfigError(f"speed: max_length.{name} must be a positive length")
        if DATASETS[self.latency_data]["head"] != "intent_slots":
            raise ConfigError("speed: latency_data must be short utterances (multiatis or mtop_sample)")
        if self.warmup < 0 or self.repeats < 1 or self.latency_calls < 2 or self.reference_samples < 1:
            raise ConfigError("speed: warmup >= 0, repeats and reference_samples >= 1, latency_calls >= 2")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ConfigError(f"speed: precision must be auto, fp32 or bf16, got {self.precision!r}")
        if any(threads < 1 for threads in self.latency_threads):
            raise ConfigError("speed: latency_threads must be positive thread counts")

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device, "speed")


# `--quick`: the same figures on less data and fewer repetitions (under 3 minutes on 2 CPU cores).
QUICK = {
    "presets": ["xs", "base"],
    "languages": ["en"],
    "documents": 2000,
    "reference_samples": 100,
    "batch_size": {"multiatis": 128, "imdb": 4},
    "reference_batch_size": {"multiatis": 128, "imdb": 4},
    "repeats": 3,
    "repeat_seconds": 0.3,
    "latency_calls": 300,
    "latency_threads": [1],
}


def parse_config(overrides: Sequence[str], quick: bool) -> SpeedConfig:
    """SpeedConfig from Hydra-style `key=value` overrides; `--quick` defaults come first."""
    config: SpeedConfig = parse_overrides(SpeedConfig, QUICK if quick else None, overrides, "speed")
    config.validate()
    return config


def run_speed(config: SpeedConfig, command: str, log: Callable[[str], None] = print) -> dict:
    started = time.perf_counter()
    device = config.resolved_device()
    if not config.warmup:
        config = dataclasses.replace(config, warmup=3 if device.type == "cuda" else 1)
    threads_reason = choose_threads(config.threads)
    host_allocator = "kept freed memory" if prepare_host("auto", device.type) else "the system's defaults"
    models = Models()
    result: dict[str, Any] = {
        "kind": "bench speed", "command": command, "config": dataclasses.asdict(config),
        "provenance": provenance(device), "hardware": {**hardware(device), "torch_threads_reason": threads_reason,
                                               "host_allocator": host_allocator},
        "featurization": [], "fingerprint_table": None, "training": [], "latency": [], "skipped": [],
    }
    feature_projection = models.projection(config.featurize_preset)
    log("fingerprint table, cold build in a temporary cache folder")
    result["fingerprint_table"] = fingerprint_table_cold(feature_projection, min(config.repeats, 3))
    loaded: dict[str, tuple[list[Example], list[str] | None]] = {}
    for name in dict.fromkeys([*config.datasets, config.latency_data]):
        try:
            loaded[name] = load_examples(name, config)
        except DataError as error:
            result["skipped"].append({"dataset": name, "reason": str(error)})
            log(f"skipping {name}: {error}")
    peak = peak_matmul_rate(device, torch.bfloat16 if uses_bf16(config, device) else torch.float32)
    result["peak_matmul"] = peak
    featurized: dict[tuple[str, str], Featurized] = {}

    def data_for(name: str, preset: str) -> Featurized:
        """The training split featurized with the preset's projection (presets sharing F share it)."""
        projection = models.projection(preset)
        key = (name, projection.cache_key())
        if key not in featurized:
            featurized[key] = featurize({"train": loaded[name][0]}, projection, config.max_length[name])
        return featurized[key]

    for name in config.datasets:
        if name not in loaded:
            continue
        examples, texts = loaded[name]
        log(f"featurization: {name} ({len(examples):,} texts)")
        result["featurization"].append(
            featurization_figures(name, examples, texts, config.max_length[name], feature_projection,
                                  models.window(config.featurize_preset), config)
        )
        for preset in config.presets:
            log(f"training: {name} {PRESET_NAMES[preset]} on {device}")
            result["training"].append(
                training_figures(name, preset, examples, data_for(name, preset), models, config, device)
            )
            gc.collect()
        if name != config.latency_data:
            featurized = {key: value for key, value in featurized.items() if key[0] != name}
    if config.latency_data in loaded:
        examples, _ = loaded[config.latency_data]
        for preset in config.latency_presets:
            log(f"latency: {PRESET_NAMES[preset]} on the CPU")
            result["latency"].append(latency_figures(preset, examples, data_for(config.latency_data, preset), models, config))
    add_flop_bounds(result)
    result["ratios"] = ratios(result)
    result["targets"] = targets(result, device, TARGETS)
    result["wall_seconds"] = time.perf_counter() - started
    if (load := load_averages()) is not None:
        result["hardware"]["load_average_at_end"] = load
    return result


def main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="bench speed", description="Speed of the fast path against the dense reference (see pnlp_bench/commands/speed/bench.py).",
        epilog="options as key=value: " + ", ".join(field.name for field in dataclasses.fields(SpeedConfig)),
    )
    parser.add_argument("--quick", action="store_true", help="fewer presets, less data and fewer repetitions (< 3 min on a CPU)")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. presets=[xs,base] device=cpu max_length.imdb=1024")
    args = parser.parse_args(list(argv))
    config = parse_config(args.overrides, args.quick)
    command = " ".join(["bench speed", *(["--quick"] if args.quick else []), *args.overrides])
    result = run_speed(config, command, log=progress_log(config.quiet))
    json_path, md_path = write_report(result, config.output, render_markdown)
    if not config.quiet:
        print_ratios(result)
    print(f"wrote {md_path} and {json_path}")
    return 0
