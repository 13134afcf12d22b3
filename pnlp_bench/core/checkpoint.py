"""Resumable checkpoints, one convention for every training loop (pNLP trainer, BiGS pretraining, BiGS
fine-tuning), so a run killed at any moment (SIGKILL included) goes on from its last checkpoint and ends with
the metrics of an uninterrupted run.

A loop writes `save_resumable(path, identity, state)`, where `state` is its own (weights, optimizer, schedule,
the states of its shuffling generators, step or epoch, best metric, history); the helper adds the run's
identity and the global random states, and writes atomically (a temporary file renamed over the old one).
Started again, the loop asks `load_resumable(path, identity)`: the state when the file belongs to this very
config and code, else None, and the loop starts afresh (a torn file, another config's or an older format's
is never trusted; retraining is always safe). Once it has loaded everything, `restore_rng(state["rng"])` puts
back the global generators (Python, NumPy, torch on the CPU and CUDA), which dropout draws from: without them
a resumed run would drop other units than the uninterrupted one from its first step on.

Checkpoints load with `weights_only=True`, so every value here is a tensor or a plain Python value.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

# bumped when the payload's layout changes: an older file is then not resumed (the run starts afresh)
RESUMABLE_FORMAT = 1


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """`torch.save` to a temporary name, then a rename: a reader (or a relaunch) sees the old file or the new."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, partial)
    partial.replace(path)


def rng_state() -> dict[str, Any]:
    """The global random states, in types `torch.load(weights_only=True)` reads back."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(
        ("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    # CUDA states only onto as many devices as saved them (a CPU checkpoint resumed on a GPU keeps the seeds)
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resumable(path: Path, identity: dict[str, str], state: dict[str, Any]) -> None:
    """The loop's `state` with the run's identity and the global random states, written atomically."""
    save_atomic({**state, "identity": identity, "rng": rng_state(), "resumable": RESUMABLE_FORMAT}, path)


def load_resumable(path: Path, identity: dict[str, str]) -> dict[str, Any] | None:
    """The checkpoint at `path` when it was written by `save_resumable` for this very identity, else None."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a torn or foreign file fails in many ways (IndexError among them); retraining is safe
        return None
    if not isinstance(state, dict) or state.get("resumable") != RESUMABLE_FORMAT or state.get("identity") != identity:
        return None
    return state
