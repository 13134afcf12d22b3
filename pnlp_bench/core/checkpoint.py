"""Reading a checkpoint back: one function, so a damaged file always says the same clear thing.

A checkpoint written by `save_torch_atomic` is whole, but a file can still be damaged afterwards: copied
while it was written elsewhere, cut short by a full disk on another tool's copy, a sync that stopped. torch
then raises `PytorchStreamReader failed reading zip archive` (or an EOFError, or an unpickling error) from
deep inside itself; `load_checkpoint` turns each into one `DamagedCheckpointError` naming the file, the
cause and what to do about it.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from pnlp_bench.core.errors import OneLineError

# What torch raises for a file that is not a whole checkpoint: a truncated or garbled zip archive
# (RuntimeError; OSError EINVAL when it is cut inside a tensor's bytes), an empty or cut pickle (EOFError,
# UnpicklingError), bytes that are no checkpoint at all (KeyError, ValueError).
UNREADABLE = (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError)
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
