"""Where a number came from: commit, versions, hardware."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

import pnlp_bench


def git_state(folder: Path) -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        # results/ holds what runs generate (tables rewritten by `bench table`), not code: it does not make the
        # tree dirty; any other modified tracked file does
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}
    except (OSError, subprocess.SubprocessError):
        return sent_state()


def sent_state() -> dict[str, object]:
    """A copy of the tree without its git folder (the GPU machine's): the commit and dirtiness the sending
    checkout wrote into BENCH_COMMIT and BENCH_DIRTY (tools/device_reproduce.sh), else unknown."""
    commit = os.environ.get("BENCH_COMMIT", "").strip()
    if not commit:
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": os.environ.get("BENCH_DIRTY", "").strip().lower() in ("1", "true", "yes")}


def cpu_model() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The CPU flags of native bf16 arithmetic (x86): with either the CPU multiplies bf16 in hardware; without them
# bf16 is converted in software, which nothing here has shown to beat fp32. Never assumed from the vendor.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def _cpuinfo() -> str:
    """/proc/cpuinfo, read once per process (precision=auto asks at every autocast)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of the first processor in /proc/cpuinfo (empty where there is none: not Linux)."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16_cpu(cpuinfo: str | None = None) -> bool:
    return any(flag in cpu_flags(cpuinfo) for flag in NATIVE_BF16_FLAGS)


def vector_unit() -> str:
    """The vector instructions torch's CPU kernels use here ("AVX2", "AVX512"), and native bf16 where the CPU
    has it. Two machines can share a model name ("AMD EPYC") and differ by this, and by 2-3x in training
    speed (seen here: BASE on MTOP English at 550-650 samples/s a thread on AVX-512 BF16 machines, in bf16;
    160-170 on a shared core of an AVX2 EPYC, in fp32)."""
    try:
        unit = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        unit = "unknown vector unit"
    return f"{unit} with bf16" if native_bf16_cpu() else unit


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU: {cpu_model()}, {vector_unit()} ({torch.get_num_threads()} threads)"


def code_state() -> dict[str, object]:
    """The commit and dirty flag of the package's checkout: read when a run starts, since that is the code it
    imported (a commit made while it trains must not be credited with its numbers)."""
    return git_state(Path(pnlp_bench.__file__).resolve().parent)


def provenance(device: torch.device, code: dict[str, object] | None = None) -> dict[str, object]:
    return {
        **(code if code is not None else code_state()),
        "package_version": pnlp_bench.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device_name(device),
        "host": platform.node(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
