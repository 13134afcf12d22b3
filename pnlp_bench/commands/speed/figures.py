"""The figures of `bench speed`, each for the project's fast path and the dense reference of
`pnlp_bench/mixer/reference.py`: 1. featurization throughput (and the cold fingerprint table), 2. training
throughput, peak memory and what bounds it, 3. single-utterance CPU latency. Timed on the shared harness
(`pnlp_bench/commands/speed/harness.py`); `bench.py` runs them and `render.py` writes them up."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pnlp_bench.commands.speed.harness import (
    PeakMemory,
    count_flops,
    interleaved_rates,
    matmul_rate,
    ratio_or_none,
    step_profile,
    summary,
    synchronize,
    tensor_megabytes,
    time_calls_interleaved,
    torch_threads,
    warm_up,
)
from pnlp_bench.commands.speed.workload import Models, imdb_words
from pnlp_bench.core.device import resolve_precision
from pnlp_bench.mixer.data.base import DataConfig, Example
from pnlp_bench.mixer.data.features import Featurized, LabelSpace, featurize
from pnlp_bench.mixer.inference import MixerPredictor, padded_inputs
from pnlp_bench.mixer.projection.minhash import MinHashProjection, fingerprint_table
from pnlp_bench.mixer.reference import DenseReferenceFeaturizer, DenseReferenceModel
from pnlp_bench.mixer.trainer import TrainerConfig, keeps_data_on_device, make_optimizer, train_step

if TYPE_CHECKING:
    from pnlp_bench.commands.speed.bench import SpeedConfig


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

# Batch sizes when `batch_size` does not name one: the paper's 256 on the CPU for short text; on CUDA the
# large batches a GPU needs to be busy. The reference keeps public settings on CUDA (it is CPU-bound there).
DEFAULT_BATCH = {
    ("cpu", "fast", "short"): 256, ("cpu", "reference", "short"): 256,
    ("cpu", "fast", "long"): 8, ("cpu", "reference", "long"): 8,
    ("cuda", "fast", "short"): 4096, ("cuda", "reference", "short"): 256,
    ("cuda", "fast", "long"): 256, ("cuda", "reference", "long"): 32,
}
# How the report names the bottleneck path a device ran (`ProjectionBottleneck.resolved_path`).
BOTTLENECK_PATHS = {
    "dense": "dense (counts scattered on the device, one matmul)",
    "bag": "bag (embedding_bag)",
    "words": "words (one count vector per word times the stacked weight, then the window's shifted sums)",
}


def batch_size_for(config: SpeedConfig, dataset: str, path: str, device: torch.device, available: int) -> int:
    chosen = config.batch_size if path == "fast" else config.reference_batch_size
    kind = "long" if config.max_length[dataset] > 256 else "short"
    size = chosen.get(dataset) or DEFAULT_BATCH[(device.type, path, kind)]
    return max(1, min(size, available))


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


def uses_bf16(config: SpeedConfig, device: torch.device) -> bool:
    return resolve_precision(config.precision, device) == "bf16"


def training_figures(
    dataset: str, preset: str, examples: list[Example], data: Featurized, models: Models, config: SpeedConfig,
    device: torch.device,
) -> dict:
    seq_len = config.max_length[dataset]
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
        device, config.repeats, config.repeat_seconds, first_index=config.warmup,
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
        memory_ratio=ratio_or_none(fast["peak_memory_mb"], reference["peak_memory_mb"]),
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


# ---------------------------------------------------------------- 3. latency


def int8_builder() -> tuple[Callable[[torch.nn.Module], torch.nn.Module] | None, str]:
    """The int8 CPU model of `pnlp_bench.mixer.quantize` when that module exists, else None and why not."""
    try:
        from pnlp_bench.mixer.quantize import int8_copy  # type: ignore[import-not-found]
    except ImportError as error:
        return None, f"int8: not available (pnlp_bench.mixer.quantize cannot be imported: {error})"
    return (lambda model: int8_copy(model, mode="dynamic")[0]), "int8: pnlp_bench.mixer.quantize.int8_copy(mode='dynamic')"


def onnx_builder() -> tuple[Callable[..., Any] | None, str]:
    """`export_onnx` and `OnnxPredictor` (pnlp_bench/mixer/export/onnx.py) when onnx and onnxruntime import
    (the `export` extra), else None and why not."""
    try:
        import onnx  # noqa: F401
        import onnxruntime

        from pnlp_bench.mixer.export.onnx import OnnxPredictor, export_onnx
    except ImportError as error:
        return None, f"onnx: not measured (install the export extra: {error})"

    def build(model: torch.nn.Module, projection: MinHashProjection, seq_len: int, words: list[str], folder: Path) -> Callable[[int], Any]:
        labels = LabelSpace(labels=[str(index) for index in range(model.head.intent.out_features)],
                            tags=[f"T{index}" for index in range(model.head.tagger.out_features)])
        export_onnx(model, projection, DataConfig(name="latency", max_length=seq_len), labels, folder, words)
        return lambda threads: OnnxPredictor(folder, unknown="empty", threads=threads)

    return build, f"onnx: onnxruntime {onnxruntime.__version__}, CPUExecutionProvider"


def predictions_agree(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> bool:
    """Same label, and the same tag at every word position the predictor returns (padding has none)."""
    if not torch.equal(expected["label"], got["label"]):
        return False
    return "tags" not in got or torch.equal(expected["tags"][:, : got["tags"].shape[1]], got["tags"])


def latency_figures(preset: str, examples: list[Example], data: Featurized, models: Models, config: SpeedConfig) -> dict:
    """Single-utterance CPU latency: one utterance at a time, batch 1, padded to S, under inference_mode."""
    seq_len = config.max_length[config.latency_data]
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
    build_onnx, onnx_note = onnx_builder()
    with contextlib.ExitStack() as stack:
        onnx_predictor: Callable[[int], Any] | None = None
        if build_onnx is not None:
            # The same weights exported (dense bottleneck, every position computed) with a table of the timed
            # utterances' words, so every look-up hits, as the predictor's warm cache does.
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-speed-onnx-")))
            onnx_predictor = build_onnx(model, projection, seq_len, list(dict.fromkeys(w for u in utterances for w in u)), folder)
            served = onnx_predictor(1)
            with torch.inference_mode():
                analysis["onnx_agreement"] = sum(
                    predictions_agree(model.head.predict(model(*inputs)), served.predict(words))
                    for words, inputs in zip(utterances, fast_prepared))
        with torch.inference_mode(), tokenizer_on_calling_thread():
            for threads in config.latency_threads:
                timed_variants = dict(variants)
                if onnx_predictor is not None:
                    # onnxruntime's threads are the session's: one session per thread count
                    session = onnx_predictor(threads)
                    timed_variants[("onnx", "fp32", "end_to_end")] = lambda i, session=session: session.predict(
                        utterances[i % len(utterances)])
                with torch_threads(threads):
                    timed = time_calls_interleaved(timed_variants, config.latency_calls)
                for (path, precision, scope), figures in timed.items():
                    rows.append({"path": path, "precision": precision, "scope": scope, "threads": threads, **figures})
    return {"preset": preset, "data": config.latency_data, "seq_len": seq_len, "utterances": len(utterances),
            "calls": config.latency_calls, "int8": int8_note, "onnx": onnx_note, "rows": rows, "analysis": analysis}
