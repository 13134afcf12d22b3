"""Memory a block of work needs: the resident set's high-water mark on the CPU, the allocator's peak on CUDA.

One owner for `bench speed` (a warm training step) and the BiGS fine-tuning's cost per step (its whole training
loop), so both report memory the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc

import torch


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
