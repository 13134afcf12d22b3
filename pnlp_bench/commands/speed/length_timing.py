"""`bench speed length`'s measurement of one length: one training step of a stack, the warm step that gives its
peak memory, repetitions that alternate between the variants, and the ratios against the baseline; a variant
that runs out of memory or past `max_step_seconds` is marked skipped there and at every longer length.
Timed on the harness `bench speed` uses (`pnlp_bench/commands/speed/harness.py`)."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from pnlp_bench.commands.speed.harness import PeakMemory, steps_per_repetition, summary, synchronize, tensor_megabytes

if TYPE_CHECKING:
    from pnlp_bench.commands.speed.length import Plan


def training_step(stack: torch.nn.Module, inputs: torch.Tensor, grad_output: torch.Tensor, bf16: bool) -> Callable[[], None]:
    """Forward + backward of the stack; gradients are freed after each step (there is no optimizer)."""
    device_type = inputs.device.type

    def step() -> None:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            output = stack(inputs)
        output.backward(grad_output.to(output.dtype))
        stack.zero_grad(set_to_none=True)
        inputs.grad = None

    return step


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(error).lower()


def release_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_length(
    plan: Plan, stacks: dict[str, torch.nn.Module], length: int, stopped: dict[str, str], log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """One row per variant at `length`; adds to `stopped` the variants that must not run at longer lengths."""
    profile, device = plan.profile, plan.device
    batch = max(1, profile.tokens_per_step // length)
    tokens = batch * length
    generator = torch.Generator().manual_seed(plan.config.seed + length)
    inputs = torch.randn(batch, length, profile.hidden_size, generator=generator).to(device).requires_grad_(True)
    grad_output = torch.randn(batch, length, profile.hidden_size, generator=generator).to(device)
    rows: dict[str, dict[str, Any]] = {}
    steps: dict[str, Callable[[], None]] = {}
    warm_seconds: dict[str, float] = {}
    for variant in plan.variants:
        stack = stacks[variant]
        layers = len(stack.layers)
        row: dict[str, Any] = {"length": length, "batch": batch, "tokens_per_step": tokens, "variant": variant,
                               "layers": layers, "status": "measured", "reason": None}
        rows[variant] = row
        if variant in stopped:
            row.update(status="skipped", reason=stopped[variant])
            continue
        step = training_step(stack, inputs, grad_output, plan.bf16)
        try:
            for _ in range(profile.warmup - 1):
                step()
            synchronize(device)
            with PeakMemory(device) as transient:
                started = time.perf_counter()
                step()
                synchronize(device)
                seconds = time.perf_counter() - started
        except (RuntimeError, MemoryError) as error:
            if not is_out_of_memory(error):
                raise
            stack.zero_grad(set_to_none=True)
            inputs.grad = None
            release_memory(device)
            reason = f"out of memory at batch {batch} x {length} tokens"
            row.update(status="skipped", reason=reason)
            stopped[variant] = f"{reason} (shorter length)"
            log(f"  {variant:16s} L={length}: {reason}")
            continue
        weights = tensor_megabytes(list(stack.parameters()))
        row.update(weights_mb=weights, step_transient_mb=transient.megabytes, warm_step_seconds=seconds,
                   peak_memory_mb=None if transient.megabytes is None else weights + transient.megabytes)
        if seconds > profile.max_step_seconds:
            reason = f"one step took {seconds:.1f} s, over max_step_seconds={profile.max_step_seconds:g}"
            row.update(status="skipped", reason=reason)
            stopped[variant] = f"{reason} at length {length}"
            log(f"  {variant:16s} L={length}: {reason}")
            continue
        steps[variant], warm_seconds[variant] = step, seconds
    seconds_per_step = timed_repetitions(steps, warm_seconds, plan, rows, stopped, inputs)
    for variant, seconds in seconds_per_step.items():
        row = rows[variant]
        row["repeat_seconds_per_step"] = seconds
        row["ms_per_step"] = summary([1000 * s for s in seconds])
        row["ms_per_layer"] = row["ms_per_step"]["median"] / row["layers"]
        row["tokens_per_second"] = summary([tokens / s for s in seconds])
    add_ratios(rows, plan.baseline)
    del inputs, grad_output
    release_memory(device)
    return [rows[variant] for variant in plan.variants]


def timed_repetitions(
    steps: dict[str, Callable[[], None]], warm_seconds: dict[str, float], plan: Plan, rows: dict[str, dict[str, Any]],
    stopped: dict[str, str], inputs: torch.Tensor,
) -> dict[str, list[float]]:
    """Seconds per step of each variant, one value per repetition. Repetitions alternate between the variants
    so each repetition of a ratio's two sides sees the same background load (a shared machine)."""
    profile, device = plan.profile, plan.device
    counts = {name: steps_per_repetition(profile.repeat_seconds, warm_seconds[name]) for name in steps}
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    active = list(steps)
    for _ in range(profile.repeats):
        for name in list(active):
            try:
                synchronize(device)
                started = time.perf_counter()
                for _ in range(counts[name]):
                    steps[name]()
                synchronize(device)
            except (RuntimeError, MemoryError) as error:
                if not is_out_of_memory(error):
                    raise
                inputs.grad = None
                release_memory(device)
                reason = "out of memory during the timed repetitions"
                rows[name].update(status="skipped", reason=reason)
                stopped[name] = f"{reason} at length {rows[name]['length']}"
                active.remove(name)
                seconds.pop(name)
                continue
            seconds[name].append((time.perf_counter() - started) / counts[name])
    for name in active:
        rows[name]["steps_per_repeat"] = counts[name]
    return seconds


def add_ratios(rows: dict[str, dict[str, Any]], baseline: str) -> None:
    """Throughput ratio = baseline's time / the variant's time, repetition by repetition (median); memory
    ratio = the variant's peak / the baseline's. Same tokens per step on both sides."""
    base = rows[baseline]
    for row in rows.values():
        row["throughput_ratio"] = row["memory_ratio"] = None
        if row["status"] != "measured" or base["status"] != "measured":
            continue
        pairs = zip(base["repeat_seconds_per_step"], row["repeat_seconds_per_step"])
        row["throughput_ratio"] = statistics.median(b / v for b, v in pairs)
        if row.get("peak_memory_mb") and base.get("peak_memory_mb"):
            row["memory_ratio"] = row["peak_memory_mb"] / base["peak_memory_mb"]
