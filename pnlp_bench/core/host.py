"""The host allocator, tuned for training on the CPU: what changes speed and never a number.

glibc serves large allocations (above a threshold that grows to 32 MB) with fresh `mmap`s and gives freed heap
memory back to the kernel. A training step allocates and frees the same activations every step (a BASE
token-mixing hidden of 256 rows is 32 MB in bf16, 64 MB in fp32), so every step page-faults all of them in
again and the kernel zeroes every page, which made elementwise work (GELU and its backward, copies) the
largest cost of a CPU step. A process-wide setting is measured as whole processes (results/host_allocator.md:
`bench run` with `trainer.host_allocator=auto` against `system`, alternating), not inside `bench speed`, where
switching it between steps leaves the heap in a state neither setting would have. `keep_freed_memory` tells glibc to serve everything from the heap and
keep what is freed, as PyTorch's CUDA caching allocator does on the GPU; the process keeps its peak heap
until it exits. Elsewhere (not glibc: macOS, musl) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterator
from contextlib import contextmanager

from pnlp_bench.core.registry import ConfigError

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# glibc's defaults, to go back to (`system`): 65,536 mmaps at most, trim above 128 KB
DEFAULT_MMAP_MAX = 65536
DEFAULT_TRIM_THRESHOLD = 128 * 1024
KEEP_TRIM_THRESHOLD = 2**30  # 1 GB: freed memory below this much at the heap's top stays in the process

ALLOCATORS = ("auto", "system")


def check_allocator(value: str, where: str) -> None:
    """The config check both trainer configs share."""
    if value not in ALLOCATORS:
        raise ConfigError(f"{where}.host_allocator must be {' or '.join(ALLOCATORS)}, got {value!r}")


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None  # not glibc: mallopt's parameters are glibc's
    return libc


_keeping = False  # whether keep_freed_memory(True) is in force in this process


def keep_freed_memory(keep: bool = True) -> bool:
    """keep=True: no mmap for large blocks and no trimming, so freed activations are reused without page
    faults; keep=False: glibc's defaults again (for timing against them). True if the allocator took it."""
    global _keeping
    libc = _glibc()
    if libc is None:
        return False
    mmap_max, trim = (0, KEEP_TRIM_THRESHOLD) if keep else (DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD)
    taken = bool(libc.mallopt(M_MMAP_MAX, mmap_max)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))
    _keeping = keep and taken
    return taken


@contextmanager
def large_blocks_returned() -> Iterator[None]:
    """Evaluation under `keep_freed_memory`: its batches (thousands of rows, several times a training step's
    activations) are served by mmap and given back when freed, instead of growing the kept heap for good.
    Measured on MTOP English, X-LARGE, one epoch with int8 evaluation: peak RSS 5.1 GB with the heap kept
    throughout, 2.6 GB with glibc's defaults; the training steps keep their heap either way."""
    if not _keeping:
        yield
        return
    keep_freed_memory(False)
    try:
        yield
    finally:
        keep_freed_memory(True)


def prepare_host(allocator: str, device_type: str) -> bool:
    """What a training run on `device_type` does to the host allocator: `auto` keeps freed memory when
    training on the CPU (on CUDA the host allocates little per step), `system` leaves glibc as it is."""
    return allocator == "auto" and device_type == "cpu" and keep_freed_memory(True)
