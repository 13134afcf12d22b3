"""The timing harness `bench speed` (`bench.py`) and `bench speed length` (`length.py`) share.

Synchronisation, peak memory, warm-up and interleaved repetitions (so both sides of a ratio share the
background load of a shared machine), single-call percentiles, thread and device choice, the hardware
record, the options parser, the report writer and the lines every report opens with, and what bounds a
step: matmul rates, FLOP counts and the step profile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pnlp_bench.core.atomic import write_text_atomic
from pnlp_bench.core.device import resolve_device as core_device
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.memory import PeakMemory  # noqa: F401  (speed/ imports it from here)


# ---------------------------------------------------------------- options, device, threads, hardware


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


def resolve_device(name: str, command: str) -> torch.device:
    """The device `name` names (auto, cpu, cuda, cuda:N); a bad name is a ConfigError naming the command."""
    try:
        return core_device(name)
    except ConfigError as error:
        raise ConfigError(f"{command}: {error}") from None


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


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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


def load_averages() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other jobs share the machine), None where the OS has none."""
    return [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None


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
        "load_average_at_start": load_averages(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["gpu"] = {"name": properties.name, "memory_gb": round(properties.total_memory / 2**30, 1),
                       "capability": f"{properties.major}.{properties.minor}"}
    return info


# ---------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tensor_megabytes(tensors: Iterator[torch.Tensor] | list[torch.Tensor]) -> float:
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors) / 2**20


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


def steps_per_repetition(repeat_seconds: float, warm_seconds: float) -> int:
    """Whole steps a timed repetition runs to last at least `repeat_seconds`, from the seconds of one warm step."""
    return max(1, math.ceil(repeat_seconds / max(warm_seconds, 1e-6)))


def interleaved_rates(
    paths: dict[str, tuple[Callable[[int], None], int, float]], device: torch.device, repeats: int,
    repeat_seconds: float, first_index: int = 0,
) -> dict[str, dict[str, Any]]:
    """Samples/s per timed repetition of each path: (step, batch size, seconds of one warm step) by name.

    Repetitions alternate between the paths (fast, reference, fast, …), so that each pair shares the same
    background load on a shared machine, and the ratio is taken pair by pair. Each repetition runs whole
    steps for at least `repeat_seconds`, between two synchronisations. A path's steps get the batch indices
    `first_index`, `first_index` + 1, … (those before it went to the warm-up).
    """
    steps = {name: steps_per_repetition(repeat_seconds, seconds) for name, (_, _, seconds) in paths.items()}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    next_index = {name: first_index for name in paths}
    for _ in range(repeats):
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


# ---------------------------------------------------------------- what bounds a step


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


# ---------------------------------------------------------------- reports


def ratio_or_none(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None where either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


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


def write_report(result: dict, output: str, render: Callable[[dict], str]) -> tuple[Path, Path]:
    """`<output>.json` and `<output>.md` (by `render`), each written whole then renamed."""
    stem = Path(output)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = (stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md"))
    for path, text in zip(paths, (json.dumps(result, indent=1), render(result))):
        write_text_atomic(path, text)
    return paths


def progress_log(quiet: bool) -> Callable[[str], None]:
    """Progress lines on stderr, each with the seconds since this call; nothing when `quiet`."""
    started = time.perf_counter()

    def log(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    return log
