"""One device and precision resolver for every training loop and benchmark of both families.

`resolve_device("auto")` is CUDA when present, else the CPU; `resolve_precision("auto", device)` is bf16
autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16 or AMX, read from the CPU's flags, never assumed
from its vendor), fp32 elsewhere; weights, Adam state and the loss stay fp32. On the CPU the choice stands on
results/precision.md: bf16 against fp32 on MTOP English, three seeds each."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from pnlp_bench.core.provenance import native_bf16_cpu
from pnlp_bench.core.registry import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N` as a device; under torchrun (`local_rank`) CUDA ranks get their GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type not in {"cpu", "cuda"}:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but CUDA is not available here")
    if device.type == "cuda" and device.index is None and local_rank:
        return torch.device("cuda", local_rank)
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """What `precision=auto` means on this device (see the module's note)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or (device.type == "cpu" and native_bf16_cpu()) else "fp32"


def autocast_for(precision: str, device: torch.device) -> AbstractContextManager:
    """bf16 autocast where `precision` resolves to bf16 on `device`, else nothing."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()
