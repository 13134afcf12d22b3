"""`bench speed`: how fast the project's path is against the dense reference, in one process and one report.

Figures (each for the fast path and the dense reference of `pnlp_bench/mixer/reference.py`, with their ratio):
1. featurization throughput (words/s) on real text: MultiATIS++ utterances and IMDB reviews (IMDB from the
   raw text, word pre-tokenization included), plus the cold build of the fingerprint table (in a temporary
   BENCH_CACHE_DIR, so nothing is read from a cache);
2. training throughput (samples/s) and peak memory, per size preset, on multiATIS (S = 64) and IMDB
   (S = 1024). The fast path is the trainer's own step (`training/trainer.py: train_step`): integer features
   gathered from the word table (resident on the device on CUDA), the bottleneck path picked per device,
   fused Adam and bf16 autocast on CUDA, optional torch.compile. The reference builds dense per-sample
   features on the CPU in the loop, as public code does, and trains a dense `nn.Linear` bottleneck;
3. single-utterance CPU latency (p50, p99) for the presets in `latency_presets`, words in, prediction out
   ("end to end") and model only, fp32, and int8 when `pnlp_bench.mixer.quantize` is importable;
4. FLOPs per training sample (counted by torch's FlopCounterMode) against the matmul rate the machine
   sustains, which says whether a target is within reach of this hardware.

Timing: warm-up steps first, then `repeats` timed repetitions of at least `repeat_seconds` each, with CUDA
synchronisation around every timed region; medians are reported (min and max beside them). The machine
may be shared, so fast and reference repetitions alternate and training ratios are taken pair by pair;
latency variants take turns in blocks of consecutive calls. The report goes to `<output>.md` and `<output>.json`
with the hardware, torch version and commit.

`bench speed [--quick] [key=value ...]`, e.g. `bench speed presets=[xs,base] device=cpu --quick`.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import dataclasses
import gc
import gzip
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pnlp_bench.core.atomic import write_text_atomic
from pnlp_bench.mixer.data.base import DataConfig, DataError, Example
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.features import Featurized, featurize
from pnlp_bench.mixer.data.text import words_of
from pnlp_bench.mixer.inference import MixerPredictor, padded_inputs
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.core.paths import asset, data_dir_candidates
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.mixer.projection.minhash import MinHashProjection, fingerprint_table
from pnlp_bench.core.provenance import provenance
from pnlp_bench.mixer.reference import DenseReferenceFeaturizer, DenseReferenceModel
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.host import prepare_host
from pnlp_bench.core.device import resolve_device, resolve_precision
from pnlp_bench.mixer.trainer import TrainerConfig, keeps_data_on_device, make_optimizer, train_step

PRESETS = ("xs", "small", "base", "large", "xlarge")
PRESET_NAMES = {"xs": "X-SMALL", "small": "SMALL", "base": "BASE", "large": "LARGE", "xlarge": "X-LARGE"}
MULTIATIS_LANGUAGES = ["en", "es", "pt", "de", "fr", "zh", "ja", "hi", "tr"]
# Data sets the benchmark knows, with their head (training split only: multiATIS++ train, IMDB train).
# `mtop_sample` (shipped in the package) lets the benchmark run where the shared data is absent (tests).
DATASETS = {
    "multiatis": {"head": "intent_slots"},
    "imdb": {"head": "classification"},
    "mtop_sample": {"head": "intent_slots"},
}
# Batch sizes when `batch_size` does not name one: the paper's 256 on the CPU for short text; on CUDA the
# large batches a GPU needs to be busy. The reference keeps public settings on CUDA (it is CPU-bound there).
DEFAULT_BATCH = {
    ("cpu", "fast", "short"): 256, ("cpu", "reference", "short"): 256,
    ("cpu", "fast", "long"): 8, ("cpu", "reference", "long"): 8,
    ("cuda", "fast", "short"): 4096, ("cuda", "reference", "short"): 256,
    ("cuda", "fast", "long"): 256, ("cuda", "reference", "long"): 32,
}
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
IMDB_TRAIN_DOCUMENTS = 25_000


@dataclass
class SpeedConfig:
    presets: list[str] = field(default_factory=lambda: list(PRESETS))
    datasets: list[str] = field(default_factory=lambda: ["multiatis", "imdb"])
    device: str = "auto"  # training device: auto (cuda when present), cpu, cuda, cuda:N
    seq_len: dict[str, int] = field(default_factory=lambda: {"multiatis": 64, "imdb": 1024, "mtop_sample": 64})
    languages: list[str] = field(default_factory=lambda: list(MULTIATIS_LANGUAGES))  # multiATIS languages
    documents: int = 0  # IMDB training documents featurized and trained on (0 = all 25,000)
    reference_samples: int = 1000  # texts the per-sample reference featurizes per data set (it is slow)
    featurize_preset: str = "base"  # the projection (F, w) of the featurization figures
    batch_size: dict[str, int] = field(default_factory=dict)  # per data set; absent = DEFAULT_BATCH
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
            if name not in self.seq_len or self.seq_len[name] < 1:
                raise ConfigError(f"speed: seq_len.{name} must be a positive length")
        if DATASETS[self.latency_data]["head"] != "intent_slots":
            raise ConfigError("speed: latency_data must be short utterances (multiatis or mtop_sample)")
        if self.warmup < 0 or self.repeats < 1 or self.latency_calls < 2 or self.reference_samples < 1:
            raise ConfigError("speed: warmup >= 0, repeats and reference_samples >= 1, latency_calls >= 2")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ConfigError(f"speed: precision must be auto, fp32 or bf16, got {self.precision!r}")
        if any(threads < 1 for threads in self.latency_threads):
            raise ConfigError("speed: latency_threads must be positive thread counts")

    def resolved_device(self) -> torch.device:
        try:
            return resolve_device(self.device)
        except ConfigError as error:
            raise ConfigError(f"speed: {error}") from None


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


def parse_overrides(schema: type, quick_defaults: dict | None, overrides: Sequence[str], command: str) -> Any:
    """An instance of the dataclass `schema` from Hydra-style `key=value` overrides (lists as `[a,b]`), the
    `--quick` defaults first; a bad key or value is one ConfigError naming it and the valid keys."""
    merged = OmegaConf.structured(schema)
    try:
        if quick_defaults:
            merged = OmegaConf.merge(merged, quick_defaults)
        for override in overrides:
            if "=" not in override:
                raise ConfigError(f"{command}: expected key=value, got {override!r}")
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([override]))
    except OmegaConfBaseException as error:
        valid = ", ".join(field.name for field in dataclasses.fields(schema))
        raise ConfigError(f"{command}: {str(error).splitlines()[0]}; valid keys: {valid}") from None
    return OmegaConf.to_object(merged)


def parse_config(overrides: Sequence[str], quick: bool) -> SpeedConfig:
    """SpeedConfig from Hydra-style `key=value` overrides; `--quick` defaults come first."""
    config: SpeedConfig = parse_overrides(SpeedConfig, QUICK if quick else None, overrides, "speed")
    config.validate()
    return config


# ---------------------------------------------------------------- text


# IMDB raw text, read here rather than through the IMDB loader (`data=imdb`): the loader caches its parsed
# words, and the featurization figure must time the pre-tokenization of raw text. The words come from the
# loader's own rule (`data/text.py: words_of`), so both see the same words.


def imdb_documents(limit: int) -> list[tuple[str, str]]:
    """(raw text, label) of the first `limit` (0 = all) IMDB training reviews, spread over both polarities."""
    for base in data_dir_candidates():
        path = base / "imdb" / "train.jsonl.gz"
        if path.exists():
            break
    else:
        looked = ", ".join(str(base / "imdb") for base in data_dir_candidates())
        raise DataError(f"IMDB not found (looked for train.jsonl.gz in: {looked})")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    documents = [(row["text"], "pos" if row["label"] == 1 else "neg") for row in rows]
    if limit and limit < len(documents):
        # The file holds all negative reviews, then all positive ones: take evenly spaced documents.
        documents = [documents[index] for index in np.linspace(0, len(documents) - 1, limit).astype(int)]
    return documents


def imdb_words(text: str) -> list[str]:
    """Whitespace and punctuation pre-tokenization of running text, `<br />` removed (the IMDB loader's rule)."""
    return words_of(text)


def load_examples(name: str, config: SpeedConfig) -> tuple[list[Example], list[str] | None]:
    """Training examples of a data set, and for IMDB the raw texts they were split from."""
    if name == "multiatis":
        return load_data(DataConfig(name="multiatis", languages=list(config.languages))).splits["train"], None
    if name == "mtop_sample":
        loaded = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"]))
        return loaded.splits["train"], None
    documents = imdb_documents(config.documents)
    texts = [text for text, _ in documents]
    examples = [Example(uid=str(i), lang="en", words=imdb_words(text), label=label) for i, (text, label) in enumerate(documents)]
    return examples, texts


# ---------------------------------------------------------------- models


def preset_config(preset: str) -> DictConfig:
    """The config `bench run model=mixer_<preset>` composes (projection, bottleneck, backbone)."""
    from pnlp_bench.core.compose import compose

    return compose([f"model=mixer_{preset}"])


class Models:
    """Projections (one per F), featurized data (one per data set and F) and models, built as `bench run` does."""

    def __init__(self) -> None:
        self.configs: dict[str, DictConfig] = {}
        self.projections: dict[tuple, MinHashProjection] = {}

    def config(self, preset: str) -> DictConfig:
        if preset not in self.configs:
            self.configs[preset] = preset_config(preset)
        return self.configs[preset]

    def projection(self, preset: str) -> MinHashProjection:
        options = OmegaConf.to_container(self.config(preset).projection, resolve=True)
        key = tuple(sorted(options.items()))  # type: ignore[union-attr]
        if key not in self.projections:
            name = options.pop("name")  # type: ignore[union-attr]
            self.projections[key] = PROJECTIONS.build(name, options, "projection")  # type: ignore[arg-type]
        return self.projections[key]

    def window(self, preset: str) -> int:
        return int(self.config(preset).projection.window)

    def model(self, preset: str, dataset: str, seq_len: int, data: Featurized) -> PNLPModel:
        from pnlp_bench.mixer.pipeline import build_model

        data_config = DataConfig(name=dataset, max_words=seq_len, head=DATASETS[dataset]["head"])
        return build_model(self.config(preset), data_config, data)


# ---------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resident_megabytes() -> float | None:
    return _status_kilobytes("VmRSS")


def _status_kilobytes(key: str) -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """The transient peak of a block (one warm training step): memory it needed on top of what existed before.

    CUDA: `max_memory_allocated` during the block minus what was allocated at its start. CPU: the resident
    set's high-water mark minus the resident set at the start (Linux: the mark is reset through
    /proc/self/clear_refs, and freed heap handed back with malloc_trim first). Measured after warm-up, so
    one-time allocations (kernels' workspaces, thread pools) are not charged to whichever path runs first.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.megabytes: float | None = None

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.start = resident_megabytes()
        except OSError:
            self.start = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            self.megabytes = torch.cuda.max_memory_allocated(self.device) / 2**20 - self.start
        elif self.start is not None:
            peak = _status_kilobytes("VmHWM")
            self.megabytes = None if peak is None else peak - self.start


def tensor_megabytes(tensors: Iterator[torch.Tensor] | list[torch.Tensor]) -> float:
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors) / 2**20


def state_megabytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer, resident: Featurized | None) -> float:
    """What a training path keeps allocated between steps: weights, optimizer state, device-resident data."""
    tensors = list(model.parameters())
    tensors += [value for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)]
    if resident is not None:
        tensors += [resident.word_table.indices] + [t for t in (resident.word_table.values,) if t is not None]
        for split in resident.splits.values():
            tensors += [t for t in (split.word_ids, split.label, split.tags) if t is not None]
    return tensor_megabytes(tensors)


def peak_memory(
    step: Callable[[int], None], index: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    resident: Featurized | None, device: torch.device,
) -> dict[str, float | None]:
    """Peak training memory = state kept between steps + the transient peak of one (untimed, warm) step."""
    with PeakMemory(device) as transient:
        step(index)
        synchronize(device)
    state = state_megabytes(model, optimizer, resident)
    total = None if transient.megabytes is None else state + transient.megabytes
    return {"peak_memory_mb": total, "state_mb": state, "step_transient_mb": transient.megabytes}


def summary(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def warm_up(step: Callable[[int], None], count: int, device: torch.device) -> float:
    """Runs `count` untimed steps; returns the seconds of the last one (compilation and caches are behind it)."""
    seconds = 0.0
    for index in range(count):
        started = time.perf_counter()
        step(index)
        synchronize(device)
        seconds = time.perf_counter() - started
    return seconds


def interleaved_rates(
    paths: dict[str, tuple[Callable[[int], None], int, float]], config: SpeedConfig, device: torch.device
) -> dict[str, dict[str, Any]]:
    """Samples/s per timed repetition of each path: (step, batch size, seconds of one warm step) by name.

    Repetitions alternate between the paths (fast, reference, fast, …), so that each pair shares the same
    background load on a shared machine, and the ratio is taken pair by pair. Each repetition runs whole
    steps for at least `repeat_seconds`, between two synchronisations.
    """
    steps = {name: max(1, math.ceil(config.repeat_seconds / max(seconds, 1e-6))) for name, (_, _, seconds) in paths.items()}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    next_index = {name: config.warmup for name in paths}
    for _ in range(config.repeats):
        for name, (step, batch_size, _) in paths.items():
            synchronize(device)
            started = time.perf_counter()
            for _ in range(steps[name]):
                step(next_index[name])
                next_index[name] += 1
            synchronize(device)
            rates[name].append(steps[name] * batch_size / (time.perf_counter() - started))
    return {name: {"samples_per_second": summary(rates[name]), "repeats": rates[name], "steps_per_repeat": steps[name]}
            for name in paths}


@contextlib.contextmanager
def temporary_cache_dir() -> Iterator[Path]:
    previous = os.environ.get("BENCH_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-speed-cache-") as folder:
        os.environ["BENCH_CACHE_DIR"] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop("BENCH_CACHE_DIR", None)
            else:
                os.environ["BENCH_CACHE_DIR"] = previous


@contextlib.contextmanager
def tokenizer_on_calling_thread() -> Iterator[None]:
    """WordPiece without the tokenizers library's thread pool (read at every call). For one utterance,
    waking the pool costs more than it saves: 2-4 ms more p50 latency measured on a loaded 2-core machine."""
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------- 1. featurization


def fingerprint_table_cold(projection: MinHashProjection, repeats: int) -> dict:
    """Seconds to build the vocabulary's fingerprint table with an empty cache (a fresh temporary folder)."""
    seconds = []
    for _ in range(repeats):
        with temporary_cache_dir():
            started = time.perf_counter()
            table = fingerprint_table(projection.vocab_path, projection.config.num_hashes, projection.config.seed)
            seconds.append(time.perf_counter() - started)
    return {"seconds": summary(seconds), "entries": int(table.shape[0]), "num_hashes": int(table.shape[1])}


def featurization_figures(
    name: str, examples: list[Example], texts: list[str] | None, seq_len: int, projection: MinHashProjection,
    window: int, config: SpeedConfig,
) -> dict:
    """Words/s of the project's featurize (whole split at once) and of the per-sample dense reference."""
    kept_words = sum(min(len(example.words), seq_len) for example in examples)
    featurize({"train": examples[:50]}, projection, seq_len)  # warms the tokenizer and the table
    fast_seconds, split_seconds = [], []
    for _ in range(min(config.repeats, 3)):
        started = time.perf_counter()
        if texts is not None:  # running text: the word pre-tokenization is part of the path
            fresh = [Example(e.uid, e.lang, imdb_words(text), e.label) for e, text in zip(examples, texts)]
            split_seconds.append(time.perf_counter() - started)
        else:
            fresh = examples
        featurize({"train": fresh}, projection, seq_len)
        fast_seconds.append(time.perf_counter() - started)
    fast = {
        "texts": len(examples),
        "words": kept_words,
        "seconds": summary(fast_seconds),
        "words_per_second": kept_words / statistics.median(fast_seconds),
        "pre_tokenize_seconds": summary(split_seconds) if split_seconds else None,
    }
    # The reference, per sample, on evenly spaced texts split into `repeats` timed chunks.
    featurizer = DenseReferenceFeaturizer(projection, window, seq_len)
    chosen = np.linspace(0, len(examples) - 1, min(config.reference_samples, len(examples))).astype(int)
    rates, total_words, total_seconds = [], 0, 0.0
    for chunk in np.array_split(chosen, min(config.repeats, len(chosen))):
        words_in_chunk = sum(min(len(examples[i].words), seq_len) for i in chunk)
        started = time.perf_counter()
        with tokenizer_on_calling_thread():  # faster for one sample at a time: the reference gets the better setting
            for i in chunk:
                featurizer(imdb_words(texts[i]) if texts is not None else examples[i].words)
        seconds = time.perf_counter() - started
        rates.append(words_in_chunk / seconds)
        total_words, total_seconds = total_words + words_in_chunk, total_seconds + seconds
    reference = {
        "texts": len(chosen),
        "words": total_words,
        "words_per_second": statistics.median(rates),
        "words_per_second_chunks": summary(rates),
        "ms_per_text": 1000 * total_seconds / len(chosen),
        "dense_megabytes_per_text": seq_len * featurizer.in_dim * 4 / 2**20,
    }
    return {
        "dataset": name, "seq_len": seq_len, "feature_size": projection.feature_size, "window": window,
        "fast": fast, "reference": reference, "ratio": fast["words_per_second"] / reference["words_per_second"],
    }


# ---------------------------------------------------------------- 2. training


def batch_size_for(config: SpeedConfig, dataset: str, path: str, device: torch.device, available: int) -> int:
    chosen = config.batch_size if path == "fast" else config.reference_batch_size
    kind = "long" if config.seq_len[dataset] > 256 else "short"
    size = chosen.get(dataset) or DEFAULT_BATCH[(device.type, path, kind)]
    return max(1, min(size, available))


def count_flops(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """FLOPs of one forward + backward (matmuls; gathers and elementwise work are not counted), per sample."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        outputs = model(batch["features"], batch["mask"], batch.get("values"))
        model.head.loss(outputs, batch).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch["mask"].shape[0]


def matmul_rate(rows: int, inner: int, outer: int, device: torch.device, dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of [rows, inner] @ [inner, outer] on this machine (median of `repeats` timings)."""
    left = torch.randn(rows, inner, device=device, dtype=dtype)
    right = torch.randn(inner, outer, device=device, dtype=dtype)
    torch.mm(left, right)
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(2):
            torch.mm(left, right)
        synchronize(device)
        seconds.append((time.perf_counter() - started) / 2)
    return 2 * rows * inner * outer / statistics.median(seconds) / 1e9


def peak_matmul_rate(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """What the machine sustains at best: a large square matmul (the ceiling no model's matmuls can beat)."""
    size = 8192 if device.type == "cuda" else 2048
    return {"shape": [size, size, size], "dtype": str(dtype).removeprefix("torch."),
            "gflops": matmul_rate(size, size, size, device, dtype, repeats=3)}


def reference_batch(
    featurizer: DenseReferenceFeaturizer, examples: list[Example], data: Featurized, rows: torch.Tensor, device: torch.device
) -> dict[str, torch.Tensor]:
    """A batch as public code makes it: dense per-sample features built on the CPU, then sent to the device."""
    split = data.splits["train"]
    dense = featurizer.batch([examples[row].words for row in rows.tolist()])
    if device.type == "cuda":
        dense = dense.pin_memory()
    batch = {
        "features": dense.to(device, non_blocking=True),
        "mask": (split.word_ids[rows] > 0).to(device),
        "label": split.label[rows].to(device),
    }
    if split.tags is not None:
        batch["tags"] = split.tags[rows].to(device)
    return batch


# Op categories of the step profile, by ATen name; ops under the optimizer's step count as the optimizer.
STEP_CATEGORIES = (
    ("matmul", {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_int_mm", "aten::linear"}),
    ("GELU (forward, backward)", {"aten::gelu", "aten::gelu_backward"}),
    ("LayerNorm (forward, backward)", {"aten::native_layer_norm", "aten::native_layer_norm_backward"}),
    ("copies, casts, fills", {"aten::copy_", "aten::_to_copy", "aten::clone", "aten::fill_", "aten::zero_", "aten::cat",
                              "aten::contiguous", "aten::constant_pad_nd", "aten::empty", "aten::empty_strided"}),
    ("gathers, scatters, bags", {"aten::index", "aten::index_put_", "aten::_index_put_impl_", "aten::scatter_add_",
                                 "aten::embedding_bag", "aten::_embedding_bag", "aten::_embedding_bag_backward",
                                 "aten::_embedding_bag_dense_backward", "aten::index_select", "aten::nonzero",
                                 "aten::max_pool1d", "aten::max_pool1d_with_indices", "aten::masked_fill_", "aten::gather"}),
    ("adds, products, reductions", {"aten::add", "aten::add_", "aten::sum", "aten::mul", "aten::mul_", "aten::div",
                                    "aten::div_", "aten::sub", "aten::mean", "aten::any", "aten::ne", "aten::eq", "aten::where"}),
    ("loss", {"aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
              "aten::nll_loss_backward", "aten::nll_loss2d_forward", "aten::nll_loss2d_backward"}),
)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """The profiler's native side prints a line at every start and stop on file descriptor 2 (no setting turns
    it off): point that descriptor at /dev/null meanwhile. Python errors still propagate as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def step_profile(step: Callable[[int], None], steps: int, batch_size: int, flops_per_sample: float) -> dict[str, Any]:
    """Where a training step's time goes, from torch's profiler over `steps` warm steps: each op's self time on
    the calling thread (intra-op threads work inside it), summed by category, and what is left (Python,
    autograd bookkeeping) as "outside ops". The matmul time alone bounds samples/s were everything else free:
    the figure that says what a faster elementwise path could reach at most."""
    from torch.profiler import ProfilerActivity, profile

    step(0)
    with native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as profiled:
        started = time.perf_counter()
        for index in range(steps):
            step(index)
        wall = time.perf_counter() - started
    seconds: dict[str, float] = {}
    for event in profiled.events():
        if not event.name.startswith("aten::"):
            continue
        parent, in_optimizer = event.cpu_parent, False
        while parent is not None and not in_optimizer:
            in_optimizer, parent = parent.name.startswith("Optimizer.step"), parent.cpu_parent
        category = "optimizer (Adam)" if in_optimizer else next(
            (name for name, ops in STEP_CATEGORIES if event.name in ops), "other ops")
        seconds[category] = seconds.get(category, 0.0) + event.self_cpu_time_total / 1e6
    seconds["outside ops"] = max(wall - sum(seconds.values()), 0.0)
    matmul = seconds.get("matmul", 0.0)
    return {
        "steps": steps,
        "wall_seconds_per_step": wall / steps,
        "shares": {name: value / wall for name, value in sorted(seconds.items(), key=lambda item: -item[1])},
        "matmul_seconds_per_step": matmul / steps,
        "matmul_only_bound_samples_per_second": batch_size * steps / matmul if matmul else None,
        "matmul_gflops_in_step": flops_per_sample * batch_size * steps / matmul / 1e9 if matmul else None,
        "note": "profiled steps run slower than timed ones (the profiler's own cost); shares are the reading",
    }


def uses_bf16(config: SpeedConfig, device: torch.device) -> bool:
    return resolve_precision(config.precision, device) == "bf16"


def training_figures(
    dataset: str, preset: str, examples: list[Example], data: Featurized, models: Models, config: SpeedConfig,
    device: torch.device,
) -> dict:
    seq_len = config.seq_len[dataset]
    trainer = TrainerConfig(precision=config.precision, compile=config.compile, device=str(device))
    available = len(data.splits["train"])
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(available, generator=generator)
    figures: dict[str, Any] = {"dataset": dataset, "preset": preset, "seq_len": seq_len, "device": str(device)}

    def rows_of(index: int, batch_size: int, order: torch.Tensor) -> torch.Tensor:
        start = (index * batch_size) % (available - batch_size + 1)
        return order[start : start + batch_size]

    # FLOPs per sample of every bottleneck path (CUDA runs "dense", bf16 on the CPU "words"), and of the reference.
    torch.manual_seed(config.seed)
    model = models.model(preset, dataset, seq_len, data)
    parameters = model.parameter_counts()["total"]
    flops_by_path = {}
    bf16 = uses_bf16(config, device)
    for path in ("bag", "dense", "words"):
        counted = copy.deepcopy(model)
        counted.bottleneck.path = path
        # under the step's autocast: the words path multiplies counts only under bf16 (else embedding_bag)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            flops_by_path[path] = count_flops(counted, data.batch("train", order[:2], torch.device("cpu")))
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        fast_path = model.bottleneck.resolved_path(device)
    featurizer = DenseReferenceFeaturizer(models.projection(preset), models.window(preset), seq_len)
    reference_model = DenseReferenceModel.from_fast(model)
    reference_flops = count_flops(
        copy.deepcopy(reference_model), reference_batch(featurizer, examples, data, order[:2], torch.device("cpu"))
    )

    # Fast path: exactly the trainer's step, data resident on the device when the trainer would keep it there.
    fast_batch = batch_size_for(config, dataset, "fast", device, available)
    resident_data = keeps_data_on_device(trainer, device)
    resident = data.to(device) if resident_data else data
    device_order = order.to(resident.device)
    model.to(device)
    if config.compile:
        model.compile()
    optimizer = make_optimizer(model, trainer, device)

    def trainer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, trainer: TrainerConfig) -> Callable[[int], None]:
        def step(index: int) -> None:
            batch = resident.batch("train", rows_of(index, fast_batch, device_order), device)
            train_step(model, optimizer, batch, trainer, device)

        return step

    fast_step = trainer_step(model, optimizer, trainer)

    # Plain: the project's own path as it was before the CPU speed work, fp32 (so the bag bottleneck) and no
    # padding-aware compute, timed in the same process so the gain of the present path is a ratio, not a
    # remembered number. All paths share the process's host allocator, set as a training run sets it
    # (run_speed); what that setting is worth is a whole-process figure, not one of these.
    plain_trainer = dataclasses.replace(trainer, precision="fp32", compile=False)
    plain_model = copy.deepcopy(model)
    if hasattr(plain_model.backbone, "padding_aware"):
        plain_model.backbone.padding_aware = False
    plain_optimizer = make_optimizer(plain_model, plain_trainer, device)
    plain_step = trainer_step(plain_model, plain_optimizer, plain_trainer)

    # Reference: dense per-sample features built in the loop, dense Linear bottleneck, torch's default Adam.
    reference_batch_size = batch_size_for(config, dataset, "reference", device, available)
    reference_model.to(device)
    reference_optimizer = torch.optim.Adam(reference_model.parameters(), lr=trainer.lr)

    def reference_step(index: int) -> None:
        with tokenizer_on_calling_thread():
            batch = reference_batch(featurizer, examples, data, rows_of(index, reference_batch_size, order), device)
        train_step(reference_model, reference_optimizer, batch, trainer, device)

    fast_seconds = warm_up(fast_step, config.warmup, device)
    plain_seconds = warm_up(plain_step, config.warmup, device)
    reference_seconds = warm_up(reference_step, config.warmup, device)
    fast_memory = peak_memory(fast_step, config.warmup, model, optimizer, resident if resident_data else None, device)
    reference_memory = peak_memory(reference_step, config.warmup, reference_model, reference_optimizer, None, device)
    timed = interleaved_rates(
        {"fast": (fast_step, fast_batch, fast_seconds), "plain": (plain_step, fast_batch, plain_seconds),
         "reference": (reference_step, reference_batch_size, reference_seconds)},
        config, device,
    )
    profile_steps = 3 if device.type == "cpu" else 0  # the CUDA profile is `bench speed length profile=gpu`'s job
    profiled = step_profile(fast_step, profile_steps, fast_batch, flops_by_path[fast_path]) if profile_steps else None
    del resident, optimizer, model, reference_optimizer, reference_model, plain_optimizer, plain_model
    bottleneck = BOTTLENECK_PATHS[fast_path]
    fast = {**timed["fast"], "batch_size": fast_batch, **fast_memory,
            "flops_per_sample": flops_by_path[fast_path],
            "flops_per_sample_by_bottleneck_path": flops_by_path, "bottleneck": bottleneck,
            "compiled": config.compile, "resident_data": resident_data}
    reference = {**timed["reference"], "batch_size": reference_batch_size, **reference_memory,
                 "flops_per_sample": reference_flops}
    paired = [f / r for f, r in zip(timed["fast"]["repeats"], timed["reference"]["repeats"])]
    paired_plain = [f / p for f, p in zip(timed["fast"]["repeats"], timed["plain"]["repeats"])]

    autocast_bf16 = uses_bf16(config, device)
    dim = int(models.config(preset).size.bottleneck)
    shape_rate = matmul_rate(fast_batch * seq_len, dim, 256, device, torch.bfloat16 if autocast_bf16 else torch.float32)
    fast_rate, fast_flops = fast["samples_per_second"]["median"], fast["flops_per_sample"]
    figures.update(
        parameters=parameters,
        fast=fast,
        reference=reference,
        ratio=statistics.median(paired),
        ratio_per_repetition=paired,
        plain={**timed["plain"], "batch_size": fast_batch, "precision": "fp32", "padding_aware": False},
        ratio_to_plain=statistics.median(paired_plain),
        memory_ratio=_ratio(fast["peak_memory_mb"], reference["peak_memory_mb"]),
        memory_measure=("state + CUDA peak allocated in one step" if device.type == "cuda"
                        else "state + CPU peak RSS growth in one step"),
        precision="bf16" if autocast_bf16 else "fp32",
        analysis={
            "gemm_shape": [fast_batch * seq_len, dim, 256],
            "gemm_gflops": shape_rate,
            "achieved_gflops": fast_rate * fast_flops / 1e9,
            "gemm_shape_bound_samples_per_second": shape_rate * 1e9 / fast_flops,
            "step_profile": profiled,
        },
    )
    return figures


BOTTLENECK_PATHS = {
    "dense": "dense (counts scattered on the device, one matmul)",
    "bag": "bag (embedding_bag)",
    "words": "words (one count vector per word times the stacked weight, then the window's shifted sums)",
}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


# ---------------------------------------------------------------- 3. latency


def int8_builder() -> tuple[Callable[[torch.nn.Module], torch.nn.Module] | None, str]:
    """The int8 CPU model of `pnlp_bench.mixer.quantize` when that module exists, else None and why not."""
    try:
        from pnlp_bench.mixer.quantize import int8_copy  # type: ignore[import-not-found]
    except ImportError as error:
        return None, f"int8: not available (pnlp_bench.mixer.quantize cannot be imported: {error})"
    return (lambda model: int8_copy(model, mode="dynamic")[0]), "int8: pnlp_bench.mixer.quantize.int8_copy(mode='dynamic')"


def predictions_agree(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> bool:
    """Same label, and the same tag at every word position the predictor returns (padding has none)."""
    if not torch.equal(expected["label"], got["label"]):
        return False
    return "tags" not in got or torch.equal(expected["tags"][:, : got["tags"].shape[1]], got["tags"])


def percentiles(seconds: list[float]) -> dict[str, float]:
    milliseconds = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(milliseconds, 50)), "p99_ms": float(np.percentile(milliseconds, 99)),
            "mean_ms": float(milliseconds.mean())}


def time_calls_interleaved(functions: dict[Any, Callable[[int], object]], calls: int, block: int = 25,
                           settle: int = 5) -> dict[Any, dict[str, float]]:
    """p50/p99 of single calls of each function. The functions take turns in blocks of `block` consecutive
    calls, so all variants see the same background load (the machine is shared) while each runs with its own
    weights in the caches, as a service running one model does; the first `settle` calls of a block, which
    still pay for the previous variant's cache traffic, are not counted."""
    for index in range(min(50, calls)):  # warm-up
        for function in functions.values():
            function(index)
    seconds: dict[Any, list[float]] = {key: [] for key in functions}
    index = 0
    while index < calls:
        count = min(block, calls - index)
        for key, function in functions.items():
            for offset in range(-settle, count):
                started = time.perf_counter()
                function(index + max(offset, 0))
                if offset >= 0:
                    seconds[key].append(time.perf_counter() - started)
        index += count
    return {key: percentiles(values) for key, values in seconds.items()}


def latency_figures(preset: str, examples: list[Example], data: Featurized, models: Models, config: SpeedConfig) -> dict:
    """Single-utterance CPU latency: one utterance at a time, batch 1, padded to S, under inference_mode."""
    seq_len = config.seq_len[config.latency_data]
    projection = models.projection(preset)
    torch.manual_seed(config.seed)
    model = models.model(preset, config.latency_data, seq_len, data).eval()
    reference = DenseReferenceModel.from_fast(model).eval()
    featurizer = DenseReferenceFeaturizer(projection, models.window(preset), seq_len)
    utterances = [example.words for example in examples[:200]]

    def fast_inputs(words: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return padded_inputs(projection, words, seq_len)[:2]  # MinHash: no values

    def mask_of(words: list[str]) -> torch.Tensor:
        mask = torch.zeros(1, seq_len, dtype=torch.bool)
        mask[0, : min(len(words), seq_len)] = True
        return mask

    fast_prepared = [fast_inputs(words) for words in utterances]
    reference_prepared = [(featurizer(words)[None], mask_of(words)) for words in utterances]
    variants: dict[tuple[str, str, str], Callable[[int], object]] = {
        ("fast", "fp32", "end_to_end"): lambda i: model.head.predict(model(*fast_inputs(utterances[i % len(utterances)]))),
        ("fast", "fp32", "model"): lambda i: model(*fast_prepared[i % len(fast_prepared)]),
        ("reference", "fp32", "end_to_end"): lambda i: reference.head.predict(
            reference(featurizer(utterances[i % len(utterances)])[None], mask_of(utterances[i % len(utterances)]))
        ),
        ("reference", "fp32", "model"): lambda i: reference(*reference_prepared[i % len(reference_prepared)]),
    }
    from torch.utils.flop_counter import FlopCounterMode

    # The single-utterance path (pnlp_bench.mixer.inference): cached word vectors, padding rows folded into
    # suffix sums, the last block on the n word rows only; same maths as the model, so same predictions.
    # Warm: every timed utterance's words are cached after the warm-up, as in a running service; cold: the
    # cache is emptied before each call, so every word is tokenized and projected again.
    predictor, cold = MixerPredictor(model, projection, seq_len), MixerPredictor(model, projection, seq_len)
    variants[("predictor", "fp32", "end_to_end")] = lambda i: predictor.predict(utterances[i % len(utterances)])
    variants[("predictor", "fp32", "end_to_end_cold_cache")] = lambda i: (
        cold.clear_cache(), cold.predict(utterances[i % len(utterances)]))
    # Agreement with the model, and the predictor's FLOPs per utterance (they depend on its length), in one pass.
    agreement, predictor_flops = 0, []
    with torch.inference_mode():
        for words, inputs in zip(utterances, fast_prepared):
            predictor_counter = FlopCounterMode(display=False)
            with predictor_counter:
                predicted = predictor.predict(words)
            predictor_flops.append(predictor_counter.get_total_flops())
            agreement += predictions_agree(model.head.predict(model(*inputs)), predicted)
    build_int8, int8_note = int8_builder()
    if build_int8 is not None:
        try:
            quantized = build_int8(model)
            variants[("fast", "int8", "end_to_end")] = lambda i: quantized.head.predict(
                quantized(*fast_inputs(utterances[i % len(utterances)]))
            )
            variants[("fast", "int8", "model")] = lambda i: quantized(*fast_prepared[i % len(fast_prepared)])
        except Exception as error:  # an optional module still in progress must not sink the benchmark
            int8_note = f"int8: not available (pnlp_bench.mixer.quantize failed: {type(error).__name__}: {error})"
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(*fast_prepared[0])
    dim = int(models.config(preset).size.bottleneck)
    with torch_threads(1):
        # What one core does on this model's matmuls for one utterance, and at its best.
        shape_rate = matmul_rate(seq_len, dim, 256, torch.device("cpu"), torch.float32, repeats=50)
        core_peak = matmul_rate(1024, 1024, 1024, torch.device("cpu"), torch.float32, repeats=3)
    analysis = {
        "forward_flops": counter.get_total_flops(),
        "one_core_shape_gflops": shape_rate,
        "one_core_square_gflops": core_peak,
        # No forward can be faster than its matmuls at the best rate one core reached on either shape.
        "flop_bound_ms": counter.get_total_flops() / max(shape_rate, core_peak) / 1e6,
        "predictor_median_flops": float(np.median(predictor_flops)),
        "predictor_flop_bound_ms": float(np.median(predictor_flops)) / max(shape_rate, core_peak) / 1e6,
        "predictor_agreement": agreement,
        "median_words": float(np.median([min(len(words), seq_len) for words in utterances])),
    }
    rows = []
    with torch.inference_mode(), tokenizer_on_calling_thread():
        for threads in config.latency_threads:
            with torch_threads(threads):
                timed = time_calls_interleaved(variants, config.latency_calls)
            for (path, precision, scope), figures in timed.items():
                rows.append({"path": path, "precision": precision, "scope": scope, "threads": threads, **figures})
    return {"preset": preset, "data": config.latency_data, "seq_len": seq_len, "utterances": len(utterances),
            "calls": config.latency_calls, "int8": int8_note, "rows": rows, "analysis": analysis}


# ---------------------------------------------------------------- the run


def hardware(device: torch.device) -> dict[str, Any]:
    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
    info: dict[str, Any] = {
        "cpu": cpu_model, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "memory_gb": memory_gb,
        "training_device": str(device), "cuda": torch.version.cuda, "gpu": None,
        # Other jobs share the machine: the load at the start says how contended the CPU figures are.
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["gpu"] = {"name": properties.name, "memory_gb": round(properties.total_memory / 2**30, 1),
                       "capability": f"{properties.major}.{properties.minor}"}
    return info


def choose_threads(requested: int) -> str:
    """Sets torch's CPU threads; returns why. Auto keeps torch's default unless other jobs already fill the
    cores (1-minute load average >= cores): then OpenMP's barriers wait for descheduled threads, and one
    thread was measured 2x (training) to 10x (small steps) faster on this project's shared 2-core machines."""
    if requested:
        torch.set_num_threads(requested)
        return f"threads={requested} requested"
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load >= cores and torch.get_num_threads() > 1:
        torch.set_num_threads(1)
        return f"auto: 1, the machine was oversubscribed (1-minute load average {load:.1f} on {cores} cores)"
    return f"auto: torch's default ({torch.get_num_threads()})"


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
            featurized[key] = featurize({"train": loaded[name][0]}, projection, config.seq_len[name])
        return featurized[key]

    for name in config.datasets:
        if name not in loaded:
            continue
        examples, texts = loaded[name]
        log(f"featurization: {name} ({len(examples):,} texts)")
        result["featurization"].append(
            featurization_figures(name, examples, texts, config.seq_len[name], feature_projection,
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
    result["targets"] = targets(result, config, device)
    result["wall_seconds"] = time.perf_counter() - started
    if hasattr(os, "getloadavg"):
        result["hardware"]["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    return result


# ---------------------------------------------------------------- ratios, targets, report


def add_flop_bounds(result: dict) -> None:
    """Bound every training figure by the best matmul rate the run saw on this device (the square matmul or
    any model's own shape, whichever was faster): at that rate, FLOPs per sample allow at most this many
    samples/s, whatever else the step does. The machine is shared, so the rate is the best seen, not a spec."""
    rates = [result["peak_matmul"]["gflops"], *(item["analysis"]["gemm_gflops"] for item in result["training"])]
    best = max(rates)
    result["peak_matmul"]["best_gflops_seen"] = best
    for item in result["training"]:
        item["analysis"]["best_rate_bound_samples_per_second"] = best * 1e9 / item["fast"]["flops_per_sample"]


def ratios(result: dict) -> list[dict[str, Any]]:
    """fast / reference for every figure ("better" says which way is better for it)."""
    rows = []
    for item in result["featurization"]:
        rows.append({"figure": f"featurization {item['dataset']} (words/s)", "fast": item["fast"]["words_per_second"],
                     "reference": item["reference"]["words_per_second"], "ratio": item["ratio"], "better": "higher"})
    for item in result["training"]:
        name = f"training {item['dataset']} S={item['seq_len']} {PRESET_NAMES[item['preset']]}"
        rows.append({"figure": f"{name} (samples/s, {item['device']})", "fast": item["fast"]["samples_per_second"]["median"],
                     "reference": item["reference"]["samples_per_second"]["median"], "ratio": item["ratio"], "better": "higher"})
        if "plain" in item:
            rows.append({"figure": f"{name} against the plain path (fp32, not padding-aware) (samples/s, {item['device']})",
                         "fast": item["fast"]["samples_per_second"]["median"],
                         "reference": item["plain"]["samples_per_second"]["median"], "ratio": item["ratio_to_plain"],
                         "better": "higher"})
        rows.append({"figure": f"{name} (peak MB, {item['memory_measure']})", "fast": item["fast"]["peak_memory_mb"],
                     "reference": item["reference"]["peak_memory_mb"], "ratio": item["memory_ratio"], "better": "lower"})
    for item in result["latency"]:
        reference_rows = {(row["scope"], row["threads"]): row for row in item["rows"] if row["path"] == "reference"}
        for row in item["rows"]:
            if row["path"] == "reference":
                continue
            # every end-to-end variant against the reference's end to end (words in, prediction out)
            baseline = reference_rows[("model" if row["scope"] == "model" else "end_to_end", row["threads"])]
            path = "" if row["path"] == "fast" else f" ({row['path']})"
            for stat in ("p50_ms", "p99_ms"):
                rows.append({
                    "figure": f"latency {PRESET_NAMES[item['preset']]} {row['precision']} {row['scope'].replace('_', ' ')}{path}, "
                              f"{row['threads']} thread(s) ({stat.removesuffix('_ms')}, ms)",
                    "fast": row[stat], "reference": baseline[stat], "ratio": _ratio(row[stat], baseline[stat]),
                    "better": "lower",
                })
    return rows


def _training(result: dict, dataset: str, preset: str) -> dict | None:
    return next((t for t in result["training"] if t["dataset"] == dataset and t["preset"] == preset), None)


def targets(result: dict, config: SpeedConfig, device: torch.device) -> list[dict[str, Any]]:
    """Each target of issue 4 with its measurement here, or why it is pending."""
    on_h100 = device.type == "cuda" and "H100" in torch.cuda.get_device_name(device)
    rows = []
    for dataset, key, label in (("multiatis", "multiatis_base_train_h100", "multiATIS BASE training on an H100"),
                                ("imdb", "imdb_base_train_h100", "IMDB BASE training on an H100")):
        goal = TARGETS[key]
        figures = _training(result, dataset, "base")
        row = {"target": f"{label} >= {goal:,.0f} samples/s", "goal": goal, "unit": "samples/s", "measured": None, "met": None}
        if figures is None:
            row["status"] = "not measured (data set or preset not in this run)"
        else:
            rate = figures["fast"]["samples_per_second"]["median"]
            flops = figures["fast"]["flops_per_sample_by_bottleneck_path"]["dense"]  # the GPU's path
            row["needs_tflops"] = goal * flops / 1e12
            row["gpu_path_gflops_per_sample"] = flops / 1e9
            if on_h100:
                row.update(measured=rate, met=rate >= goal, status="measured")
            else:
                row.update(
                    status=f"pending: needs an H100 (this run trained on {result['hardware']['training_device']})",
                    here=rate,
                    here_bound=figures["analysis"]["best_rate_bound_samples_per_second"],
                )
        rows.append(row)
    imdb = next((f for f in result["featurization"] if f["dataset"] == "imdb"), None)
    goal = TARGETS["imdb_featurize_seconds"]
    row = {"target": f"featurize all 25,000 IMDB training documents (tokenization included) < {goal:.0f} s",
           "goal": goal, "unit": "s", "measured": None, "met": None}
    if imdb is None:
        row["status"] = "not measured (imdb not in this run)"
    else:
        seconds = imdb["fast"]["seconds"]["median"]
        if imdb["fast"]["texts"] >= IMDB_TRAIN_DOCUMENTS:
            row.update(measured=seconds, met=seconds < goal, status="measured")
        else:
            estimate = seconds * IMDB_TRAIN_DOCUMENTS / imdb["fast"]["texts"]
            row.update(status=f"extrapolated from {imdb['fast']['texts']:,} documents", estimate=estimate)
    rows.append(row)
    goal = TARGETS["fingerprint_table_seconds"]
    table_seconds = result["fingerprint_table"]["seconds"]["median"]
    rows.append({"target": f"fingerprint table cold build < {goal:.0f} s", "goal": goal, "unit": "s",
                 "measured": table_seconds, "met": table_seconds < goal, "status": "measured"})
    goal = TARGETS["base_latency_p50_ms"]
    base = next((item for item in result["latency"] if item["preset"] == "base"), None)
    row = {"target": f"BASE single-utterance CPU latency p50 < {goal:g} ms (words in, prediction out)", "goal": goal,
           "unit": "ms", "measured": None, "met": None}
    if base is None:
        row["status"] = "not measured (base not in latency_presets)"
    else:
        # the fastest thread count of each end-to-end variant: the padded model (fp32, int8) and the predictor
        variants = {precision: ("fast", "end_to_end", precision) for precision in ("fp32", "int8")}
        variants |= {f"predictor_{scope}": ("predictor", scope, "fp32") for scope in ("end_to_end", "end_to_end_cold_cache")}
        for key, (path, scope, precision) in variants.items():
            candidates = [r for r in base["rows"] if (r["path"], r["scope"], r["precision"]) == (path, scope, precision)]
            if candidates:
                best = min(candidates, key=lambda r: r["p50_ms"])
                row[f"{key}_p50_ms"] = best["p50_ms"]
                row[f"{key}_threads"] = best["threads"]
        measured = {key: value for key, value in row.items() if key.endswith("_p50_ms")}
        row["measured_by"] = min(measured, key=measured.get) if measured else None
        row["measured"] = min(measured.values(), default=math.inf)
        row["met"] = row["measured"] < goal
        row["status"] = "measured (best thread count; fp32" + (" and int8" if "int8_p50_ms" in row else " only: " + base["int8"]) + \
            (", model and predictor)" if any(key.startswith("predictor") for key in measured) else ")")
    rows.append(row)
    rows += cpu_targets(result, device)
    return rows


def cpu_targets(result: dict, device: torch.device) -> list[dict[str, Any]]:
    """The CPU speed issue's targets (2 cores): each measured on this run's CPU, or why not."""
    rows = []
    on_cpu = device.type == "cpu"
    goal = TARGETS["cpu_base_train"]
    for dataset in ("multiatis", "mtop_sample"):
        figures = _training(result, dataset, "base")
        row = {"target": f"CPU: BASE training on {dataset} >= {goal:,.0f} samples/s", "goal": goal, "unit": "samples/s",
               "measured": None, "met": None}
        if figures is None or not on_cpu:
            row["status"] = "not measured (not trained on the CPU in this run)"
        else:
            rate = figures["fast"]["samples_per_second"]["median"]
            row.update(measured=rate, met=rate >= goal, status=f"measured on {result['hardware']['cpu']}")
            profiled = figures["analysis"].get("step_profile")
            if profiled and profiled["matmul_only_bound_samples_per_second"]:
                row["matmul_only_bound"] = profiled["matmul_only_bound_samples_per_second"]
        rows.append(row)
    goal = TARGETS["cpu_ratio_to_plain"]
    for dataset, preset in (("multiatis", "xlarge"), ("imdb", "base")):
        figures = _training(result, dataset, preset)
        row = {"target": f"CPU: {PRESET_NAMES[preset]} on {dataset} >= {goal:g}× the plain path", "goal": goal, "unit": "×",
               "measured": None, "met": None}
        if figures is None or not on_cpu or "ratio_to_plain" not in figures:
            row["status"] = "not measured (data set or preset not trained on the CPU in this run)"
        else:
            row.update(measured=figures["ratio_to_plain"], met=figures["ratio_to_plain"] >= goal, status="measured")
        rows.append(row)
    goal = TARGETS["predictor_p50_one_thread_ms"]
    base = next((item for item in result["latency"] if item["preset"] == "base"), None)
    row = {"target": f"CPU: BASE MixerPredictor p50 <= {goal:g} ms on one thread (warm word cache)", "goal": goal, "unit": "ms",
           "measured": None, "met": None}
    chosen = [r for r in (base or {}).get("rows", [])
              if (r["path"], r["scope"], r["threads"]) == ("predictor", "end_to_end", 1)]
    if chosen:
        row.update(measured=chosen[0]["p50_ms"], met=chosen[0]["p50_ms"] <= goal, status="measured")
    else:
        row["status"] = "not measured (BASE or one thread not in the latency figures)"
    rows.append(row)
    return rows


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else (f"{ratio:,.1f}×" if ratio >= 10 else f"{ratio:.2f}×")


def provenance_lines(prov: dict, hw: dict, no_gpu: str) -> list[str]:
    """The commit line and the hardware line every speed report opens with."""
    gpu = hw.get("gpu")
    return [
        f"Commit `{prov['commit']}`" + (" (**dirty tree**)" if prov.get("dirty") else " (clean tree)")
        + f", pnlp-bench {prov['package_version']}, torch {prov['torch_version']}, Python {prov['python_version']}, {prov['date']}.",
        f"Hardware: {hw['cpu']}, {hw['cpu_cores']} CPU cores, {hw['memory_gb']} GB; torch threads {hw['torch_threads']}"
        + (f" ({hw['torch_threads_reason']})" if hw.get("torch_threads_reason") else "")
        + (f"; host allocator: {hw['host_allocator']}" if hw.get("host_allocator") else "") + "; "
        + (f"GPU {gpu['name']} ({gpu['memory_gb']} GB, CUDA {hw['cuda']})." if gpu is not None else no_gpu)
        + (f" Load average (1, 5, 15 min) at start {hw['load_average_at_start']}, at end {hw.get('load_average_at_end')}."
           if hw.get("load_average_at_start") else ""),
    ]


def render_markdown(result: dict) -> str:
    prov, hw, config = result["provenance"], result["hardware"], result["config"]
    on_cuda = hw["gpu"] is not None
    lines = [
        "# Speed: the project's path against the dense reference (`bench speed`)",
        "",
        f"Command: `{result['command']}` ({'quick profile' if '--quick' in result['command'] else 'full profile'}), "
        f"{result['wall_seconds']:.0f} s in one process.",
        *provenance_lines(prov, hw, "no GPU (training on the CPU)."),
        "",
        "Method: warm-up first, then timed repetitions with CUDA synchronisation around each; medians, with the",
        "range over repetitions. The reference is `pnlp_bench/mixer/reference.py`: dense per-sample float count vectors of",
        "size (2w+1)·F built on the CPU for every sample (with this project's fingerprints, so it computes the same",
        "numbers) and a dense `nn.Linear` bottleneck, as public implementations do. Ratios are fast / reference.",
        "The machine is shared (2 cores, other developers' jobs), so single figures are noisy; same-process ratios",
        "are the robust reading.",
        "",
    ]
    if not on_cuda:
        lines += [
            "## GPU (H100) figures: pending",
            "",
            "This run had no GPU, so the H100 targets are not measured yet. To measure them on an H100:",
            "`bench speed device=cuda compile=true` (fast path: featurized splits and word table resident on the",
            "device, no DataLoader workers, bf16 autocast, fused Adam, the dense bottleneck path, torch.compile,",
            "batch 4096 on multiATIS and 256 on IMDB). The FLOP rates those targets need are in the targets table.",
            "",
        ]
    lines += ["## Summary (fast / reference)", ""]
    for label, prefix, suffix in (
        ("featurization, words/s", "featurization", "(words/s)"),
        ("training, samples/s", "training", "samples/s"),
        ("training, peak memory", "training", "peak MB"),
        ("latency p50, end to end", "latency", "end to end"),
        ("latency p50, model", "latency", "model"),
    ):
        chosen = [row["ratio"] for row in result["ratios"] if row["figure"].startswith(prefix) and suffix in row["figure"]
                  and (prefix != "latency" or "(p50" in row["figure"]) and row["ratio"] is not None]
        if chosen:
            lines.append(f"- {label}: {_times(min(chosen))} to {_times(max(chosen))} over {len(chosen)} figures")
    lines += ["", "## Targets", "", "| target | measured | met | notes |", "|---|---|---|---|"]
    for row in result["targets"]:
        measured = "–" if row["measured"] is None else f"{_number(row['measured'], 2)} {row['unit']}"
        met = "–" if row["met"] is None else ("yes" if row["met"] else "**no**")
        notes = [row["status"]]
        if "needs_tflops" in row:
            notes.append(f"needs {row['needs_tflops']:.0f} TFLOP/s of matmuls sustained ({row['gpu_path_gflops_per_sample']:.3f} "
                         "GFLOP/sample on the GPU's dense-bottleneck path × target)")
        if "here" in row:
            notes.append(f"here: {_number(row['here'])} samples/s, FLOP bound at the best matmul rate seen here {_number(row['here_bound'])}")
        if "estimate" in row:
            notes.append(f"estimate for 25,000: {row['estimate']:.1f} s")
        if "matmul_only_bound" in row:
            notes.append(f"the step's own matmuls alone allow at most {_number(row['matmul_only_bound'])} samples/s (step profile below)")
        for key, label in (("fp32", "model fp32"), ("int8", "model int8"), ("predictor_end_to_end", "predictor fp32, warm word cache"),
                           ("predictor_end_to_end_cold_cache", "predictor fp32, cold word cache")):
            if f"{key}_p50_ms" in row:
                notes.append(f"{label} {row[f'{key}_p50_ms']:.2f} ms ({row[f'{key}_threads']} thread(s))")
        lines.append(f"| {row['target']} | {measured} | {met} | {'; '.join(notes)} |")
    table = result["fingerprint_table"]
    lines += [
        "",
        "## 1. Featurization (CPU)",
        "",
        f"Fingerprint table, cold (empty temporary BENCH_CACHE_DIR): {table['seconds']['median']:.2f} s "
        f"(range {table['seconds']['min']:.2f}–{table['seconds']['max']:.2f}) for {table['entries']:,} × {table['num_hashes']}.",
        f"Projection of preset `{config['featurize_preset']}`. Fast: the project's `featurize` over the whole split "
        "(unique words tokenized once, table look-ups, int16 buckets), table warm. Reference: per sample, dense.",
        "",
        "| data | S | fast texts | fast words/s | fast time (s) | reference texts | reference words/s | reference ms/text | dense MB/text | fast/reference |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["featurization"]:
        fast, reference = item["fast"], item["reference"]
        split = fast["pre_tokenize_seconds"]
        time_text = f"{fast['seconds']['median']:.2f}" + (f" (pre-tokenize {split['median']:.2f})" if split else "")
        lines.append(
            f"| {item['dataset']} | {item['seq_len']} | {fast['texts']:,} | {_number(fast['words_per_second'])} | {time_text} | "
            f"{reference['texts']:,} | {_number(reference['words_per_second'])} | {reference['ms_per_text']:.2f} | "
            f"{reference['dense_megabytes_per_text']:.2f} | {_times(item['ratio'])} |"
        )
    lines += [
        "",
        "## 2. Training throughput and peak memory",
        "",
        "One optimizer step per batch (forward, loss, backward, Adam). Fast: the trainer's `train_step` on batches",
        "gathered from the word table; reference: dense features built per sample in the loop. Peak memory = what a",
        "path keeps between steps (weights, Adam state" + (", device-resident featurized data" if on_cuda else "")
        + ") + the transient peak of one warm step (gradients, batch, activations; "
        + ("CUDA peak allocated)." if on_cuda else "growth of the process's peak RSS)."),
        "",
        "Repetitions alternate fast, reference, fast, …; fast/ref is the median of the per-pair ratios.",
        "",
        "| data | S | preset | params | fast batch | fast samples/s (range) | ref batch | ref samples/s (range) | fast/ref | fast MB | ref MB | MB fast/ref |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["training"]:
        fast, reference = item["fast"], item["reference"]
        fr, rr = fast["samples_per_second"], reference["samples_per_second"]
        lines.append(
            f"| {item['dataset']} | {item['seq_len']} | {PRESET_NAMES[item['preset']]} | {item['parameters']:,} | {fast['batch_size']} | "
            f"{_number(fr['median'], 1)} ({_number(fr['min'], 1)}–{_number(fr['max'], 1)}) | {reference['batch_size']} | "
            f"{_number(rr['median'], 1)} ({_number(rr['min'], 1)}–{_number(rr['max'], 1)}) | {_times(item['ratio'])} | "
            f"{_number(fast['peak_memory_mb'])} | {_number(reference['peak_memory_mb'])} | {_times(item['memory_ratio'])} |"
        )
    plain_rows = [item for item in result["training"] if "plain" in item]
    if plain_rows:
        lines += [
            "",
            "Against the project's plain path (the same step in fp32, so with the bag bottleneck, and without padding-aware",
            "compute: the CPU default before the speed work), timed in the same alternation; fast/plain is the median of the",
            "per-pair ratios. Every path ran with the host allocator a CPU training run sets (`trainer.host_allocator=auto`).",
            "",
            "| data | S | preset | fast precision | bottleneck | fast samples/s | plain samples/s (range) | fast/plain |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for item in plain_rows:
            pr = item["plain"]["samples_per_second"]
            lines.append(
                f"| {item['dataset']} | {item['seq_len']} | {PRESET_NAMES[item['preset']]} | {item['precision']} | "
                f"{item['fast']['bottleneck'].split(' ')[0]} | {_number(item['fast']['samples_per_second']['median'], 1)} | "
                f"{_number(pr['median'], 1)} ({_number(pr['min'], 1)}–{_number(pr['max'], 1)}) | {_times(item['ratio_to_plain'])} |"
            )
    lines += [
        "",
        "### What limits training here: FLOPs per sample against the matmul rate this machine sustains",
        "",
        "FLOPs per sample: forward + backward matmuls counted by torch's FlopCounterMode (gathers, scatters and",
        "elementwise work not included), for the bottleneck path this device runs. Shape: the model's channel-mixing",
        "matmul [batch·S, B] @ [B, 256] timed alone. Best rate: the fastest matmul rate this run saw here, "
        + f"{result['peak_matmul']['best_gflops_seen']:.0f} GFLOP/s",
        f"({result['peak_matmul']['dtype']}; a {'×'.join(map(str, result['peak_matmul']['shape']))} matmul gave "
        + f"{result['peak_matmul']['gflops']:.0f}); best rate / FLOPs per sample bounds samples/s whatever else a",
        "step does. Achieved = measured samples/s × FLOPs per sample.",
        "",
        "| data | preset | precision | fast GFLOP/sample | ref GFLOP/sample | achieved GFLOP/s | shape GFLOP/s | bound at shape rate | bound at best rate | measured samples/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["training"]:
        analysis = item["analysis"]
        lines.append(
            f"| {item['dataset']} | {PRESET_NAMES[item['preset']]} | {item['precision']} | {item['fast']['flops_per_sample'] / 1e9:.3f} | "
            f"{item['reference']['flops_per_sample'] / 1e9:.3f} | {analysis['achieved_gflops']:.1f} | {analysis['gemm_gflops']:.0f} | "
            f"{_number(analysis['gemm_shape_bound_samples_per_second'])} | {_number(analysis['best_rate_bound_samples_per_second'])} | "
            f"{_number(item['fast']['samples_per_second']['median'])} |"
        )
    lines += step_profile_lines(result)
    lines += ["", "## 3. Single-utterance latency (CPU, batch 1)", ""]
    for item in result["latency"]:
        lines += [
            f"### {PRESET_NAMES[item['preset']]} ({item['data']}, S = {item['seq_len']}, {item['calls']} calls over "
            f"{item['utterances']} utterances; {item['int8']})",
            "",
            "| path | precision | scope | threads | p50 ms | p99 ms | mean ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in item["rows"]:
            lines.append(f"| {row['path']} | {row['precision']} | {row['scope'].replace('_', ' ')} | {row['threads']} | "
                         f"{row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {row['mean_ms']:.3f} |")
        lines.append("")
    lines += [
        "End to end: words in (WordPiece, fingerprint look-up, features), prediction out. Model: features given.",
        "WordPiece runs on the calling thread (TOKENIZERS_PARALLELISM=false): for one utterance its thread pool costs",
        "more than it saves. Variants take turns in blocks of 25 calls (the first 5 calls of a block not counted), so",
        "they share the background load while each runs on caches holding its own weights, as a one-model service does.",
        "Paths `fast` and `reference` run the model over the full S positions, as training does.",
        "",
        "Path `predictor` is `pnlp_bench.mixer.inference.MixerPredictor`, the single-utterance path: each word's 2w+1",
        "bottleneck vectors cached (LRU), the padding rows (all equal) entering the first token mixing once through",
        "suffix sums of its weight, and the last block and the head computed on the n word rows only. Same maths as",
        "the model (tests/test_inference.py); its predictions agreed with the model's on "
        + ", ".join(f"{item['analysis']['predictor_agreement']} of {item['utterances']} utterances ({PRESET_NAMES[item['preset']]})"
                    for item in result["latency"] if "predictor_agreement" in item["analysis"]) + ".",
        "Warm: every timed utterance was seen in the warm-up, as in a running service; cold cache: the cache is",
        "emptied before every call, so each word is tokenized and projected again.",
        "",
        "What bounds it: the forward's matmul FLOPs (FlopCounterMode) over the best rate one core of this machine",
        "reached on the model's channel-mixing shape [S, B] @ [B, 256] or on a 1024³ matmul (one thread each):",
        "",
        "| preset | forward MFLOP | one core, model shape (GFLOP/s) | one core, 1024³ (GFLOP/s) | FLOP bound (ms) "
        "| predictor MFLOP (median utterance) | predictor FLOP bound (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in result["latency"]:
        analysis = item["analysis"]
        predictor = (f"{analysis['predictor_median_flops'] / 1e6:.1f} ({analysis['median_words']:.0f} words) | "
                     f"{analysis['predictor_flop_bound_ms']:.2f}") if "predictor_median_flops" in analysis else "– | –"
        lines.append(
            f"| {PRESET_NAMES[item['preset']]} | {analysis['forward_flops'] / 1e6:.1f} | {analysis['one_core_shape_gflops']:.1f} | "
            f"{analysis['one_core_square_gflops']:.1f} | {analysis['flop_bound_ms']:.2f} | {predictor} |"
        )
    lines.append("")
    lines += ["## 4. Ratios (fast / reference)", "", "| figure | fast | reference | fast/reference | better |", "|---|---|---|---|---|"]
    for row in result["ratios"]:
        lines.append(f"| {row['figure']} | {_number(row['fast'], 3)} | {_number(row['reference'], 3)} | {_times(row['ratio'])} | {row['better']} |")
    for skipped in result["skipped"]:
        lines.append(f"\nSkipped {skipped['dataset']}: {skipped['reason']}")
    return "\n".join(lines) + "\n"


def step_profile_lines(result: dict) -> list[str]:
    profiled = [item for item in result["training"] if item["analysis"].get("step_profile")]
    if not profiled:
        return []
    categories = list(dict.fromkeys(name for item in profiled for name in item["analysis"]["step_profile"]["shares"]))
    lines = [
        "",
        "### Where a fast step's time goes (torch profiler, self time per op on the calling thread)",
        "",
        "Share of the profiled steps' wall time per op category (`STEP_CATEGORIES` in `pnlp_bench/commands/speed/bench.py`; ops",
        "inside Adam's step count as the optimizer; \"outside ops\" is Python and autograd bookkeeping). Matmul-only",
        "bound: samples/s if every op but the matmuls took no time, from the matmuls' own time in the step; matmul",
        "rate in step: the counted FLOPs over that time. Profiled steps are slower than timed ones; shares are the reading.",
        "",
        "| data | preset | " + " | ".join(categories) + " | matmul rate in step (GFLOP/s) | matmul-only bound (samples/s) | measured samples/s |",
        "|---|---|" + "---|" * (len(categories) + 3),
    ]
    for item in profiled:
        step = item["analysis"]["step_profile"]
        shares = " | ".join(f"{100 * step['shares'].get(name, 0.0):.0f}%" for name in categories)
        lines.append(
            f"| {item['dataset']} | {PRESET_NAMES[item['preset']]} | {shares} | {_number(step['matmul_gflops_in_step'])} | "
            f"{_number(step['matmul_only_bound_samples_per_second'])} | {_number(item['fast']['samples_per_second']['median'])} |"
        )
    return lines


def write_report(result: dict, output: str, render: Callable[[dict], str] | None = None) -> tuple[Path, Path]:
    """`<output>.json` and `<output>.md` (by `render`, this report's by default), each written whole then renamed."""
    stem = Path(output)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = (stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md"))
    for path, text in zip(paths, (json.dumps(result, indent=1), (render or render_markdown)(result))):
        write_text_atomic(path, text)
    return paths


def print_ratios(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="bench speed: fast / reference")
    for column in ("figure", "fast", "reference", "fast/ref", "better"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for row in result["ratios"]:
        table.add_row(row["figure"], _number(row["fast"], 3), _number(row["reference"], 3), _times(row["ratio"]), row["better"])
    console = Console()
    console.print(table)
    for row in result["targets"]:
        met = "–" if row["met"] is None else ("met" if row["met"] else "NOT met")
        measured = "" if row["measured"] is None else f" measured {_number(row['measured'], 2)} {row['unit']},"
        console.print(f"target: {row['target']}:{measured} {met} ({row['status']})", highlight=False)


def main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="bench speed", description="Speed of the fast path against the dense reference (see pnlp_bench/commands/speed/bench.py).",
        epilog="options as key=value: " + ", ".join(field.name for field in dataclasses.fields(SpeedConfig)),
    )
    parser.add_argument("--quick", action="store_true", help="fewer presets, less data and fewer repetitions (< 3 min on a CPU)")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. presets=[xs,base] device=cpu seq_len.imdb=1024")
    args = parser.parse_args(list(argv))
    config = parse_config(args.overrides, args.quick)
    command = " ".join(["bench speed", *(["--quick"] if args.quick else []), *args.overrides])
    started = time.perf_counter()

    def log(message: str) -> None:
        if not config.quiet:
            print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    result = run_speed(config, command, log=log)
    json_path, md_path = write_report(result, config.output)
    if not config.quiet:
        print_ratios(result)
    print(f"wrote {md_path} and {json_path}")
    return 0
