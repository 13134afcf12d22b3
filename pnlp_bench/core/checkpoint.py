"""Checkpoints: one convention for every training loop (pNLP trainer, BiGS pretraining, BiGS fine-tuning),
and one reader, so a damaged file always says the same clear thing.

Resuming. A loop writes `save_resumable(path, identity, state)`, where `state` is its own (weights, optimizer,
schedule, the states of its shuffling generators, step or epoch, best metric, history); the helper adds the
run's identity and the global random states, and writes atomically (`core/atomic.py`). Started again, the loop
asks `load_resumable(path, identity)`: the state when the file belongs to this very config and code, else None
(another config's or an older format's file: the loop starts afresh). Once it has loaded everything,
`restore_rng(state["rng"])` puts back the global generators (Python, NumPy, torch on the CPU and CUDA), which
dropout draws from: without them a resumed run would drop other units than the uninterrupted one.

Reading. A checkpoint written atomically is whole, but a file can still be damaged afterwards: copied while
it was written elsewhere, cut short on another tool's copy, a sync that stopped. torch then raises
`PytorchStreamReader failed reading zip archive` (or an EOFError, or an unpickling error) from deep inside;
`load_checkpoint` turns each into one `DamagedCheckpointError` naming the file, the cause and what to do. A
damaged `last.pt` stops the run rather than starting over, because a read can fail for a passing reason
while the file is good, and starting over would overwrite it.

Checkpoints load with `weights_only=True`, so every value here is a tensor or a plain Python value.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

from pnlp_bench.core.atomic import save_torch_atomic
from pnlp_bench.core.errors import OneLineError

# What torch raises for a file that is not a whole checkpoint: a truncated or garbled zip archive
# (RuntimeError; OSError EINVAL when it is cut inside a tensor's bytes), an empty or cut pickle (EOFError,
# UnpicklingError; IndexError from torch's weights-only unpickler), bytes that are no checkpoint at all (KeyError, ValueError).
UNREADABLE = (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError, IndexError)
# Not damage: the file is absent, or this user may not read it; those keep their own (clear) OS errors.
NOT_DAMAGE = (FileNotFoundError, PermissionError, IsADirectoryError)


class DamagedCheckpointError(OneLineError):
    """A checkpoint file exists but cannot be read back."""

    def __init__(self, path: Path, cause: BaseException, advice: str) -> None:
        # torch's messages run to several sentences of advice about weights_only; the first one says what failed
        first = (str(cause).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
        reason = f"{type(cause).__name__}: {first}" if first else type(cause).__name__
        super().__init__(f"{path} is damaged, it cannot be read ({reason}); {advice}")
        self.path = path


def resume_advice(path: Path) -> str:
    """What to do with a damaged `last.pt`: the run stops rather than starting over by itself, because a
    read can fail for a passing reason (a network filesystem) while the file is good, and starting over
    would overwrite it."""
    return f"move it aside (or delete it) and run again to train this run from the start, or restore {path.name} from a copy"


def load_checkpoint(path: str | Path, advice: str, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint's dictionary (tensors and plain types only: `weights_only`). A missing file raises
    FileNotFoundError as usual (callers say what a missing file means); an unreadable one raises
    `DamagedCheckpointError` ending in `advice`."""
    import torch  # here, not at the top: core stays importable without torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except NOT_DAMAGE:
        raise
    except UNREADABLE as error:
        raise DamagedCheckpointError(path, error, advice) from error
    if not isinstance(payload, dict):
        raise DamagedCheckpointError(path, TypeError(f"holds a {type(payload).__name__}, not a checkpoint dictionary"), advice)
    return payload


# bumped when the payload's layout changes: an older file is then not resumed (the run starts afresh)
RESUMABLE_FORMAT = 1


def rng_state() -> dict[str, Any]:
    """The global random states, in types `torch.load(weights_only=True)` reads back."""
    import numpy as np
    import torch

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
    import numpy as np
    import torch

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
    save_torch_atomic(path, {**state, "identity": identity, "rng": rng_state(), "resumable": RESUMABLE_FORMAT})


def load_resumable(path: Path, identity: dict[str, str], accept_unversioned: bool = False) -> dict[str, Any] | None:
    """The checkpoint at `path` when it was written by `save_resumable` for this very identity, else None.
    A file that cannot be read raises `DamagedCheckpointError` (see the module's note).

    `accept_unversioned`: a loop whose own last.pt predates this helper (the pNLP trainer's: the same
    fields, no format number and no random states) takes such a file too; it then has no `rng` to restore."""
    path = Path(path)
    if not path.exists():
        return None
    state = load_checkpoint(path, resume_advice(path))
    version = state.get("resumable", 0 if accept_unversioned else None)
    if version not in (RESUMABLE_FORMAT, 0) or (version == 0 and not accept_unversioned) or state.get("identity") != identity:
        return None
    return state
