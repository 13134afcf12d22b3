"""The resumable-checkpoint helper every training loop shares (pnlp_bench/core/checkpoint.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pnlp_bench.core.atomic import save_torch_atomic
from pnlp_bench.core.checkpoint import (
    DamagedCheckpointError,
    load_resumable,
    restore_rng,
    rng_state,
    save_resumable,
)

IDENTITY = {"config_hash": "abc", "code_version": "0.1.0"}


def draws() -> tuple:
    return random.random(), random.gauss(0, 1), float(np.random.rand()), np.random.randn(), torch.rand(3).tolist()


def test_the_global_random_states_come_back_after_a_round_trip_through_a_checkpoint(tmp_path):
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state, which must survive too
    np.random.randn()
    save_resumable(tmp_path / "last.pt", IDENTITY, {"epoch": 3})
    expected = draws()
    draws()  # the killed run went on drawing; the relaunch must not see that
    state = load_resumable(tmp_path / "last.pt", IDENTITY)
    assert state is not None and state["epoch"] == 3
    restore_rng(state["rng"])
    assert draws() == expected


def test_only_a_checkpoint_of_this_identity_and_format_is_resumed(tmp_path):
    path = tmp_path / "last.pt"
    assert load_resumable(path, IDENTITY) is None  # nothing yet
    save_resumable(path, IDENTITY, {"epoch": 1})
    assert load_resumable(path, {**IDENTITY, "config_hash": "other"}) is None  # another config's
    save_torch_atomic(path, {"epoch": 1, "identity": IDENTITY})  # a last.pt of the layout before this helper
    assert load_resumable(path, IDENTITY) is None
    # the pNLP trainer's own last.pt of before (same fields, no format, no random states) still resumes there
    assert load_resumable(path, IDENTITY, accept_unversioned=True)["epoch"] == 1
    assert load_resumable(path, {**IDENTITY, "config_hash": "other"}, accept_unversioned=True) is None
    path.write_bytes(b"torn")  # a file cut short (never by an atomic save, but a copy can be): the run stops
    with pytest.raises(DamagedCheckpointError, match="last.pt is damaged"):
        load_resumable(path, IDENTITY)


def test_an_atomic_save_leaves_no_temporary_file(tmp_path):
    save_torch_atomic(tmp_path / "best.pt", {"x": torch.ones(2)})
    save_torch_atomic(tmp_path / "best.pt", {"x": torch.zeros(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]
    assert torch.load(tmp_path / "best.pt", weights_only=True)["x"].sum() == 0
    assert rng_state()["cuda"] == [] or torch.cuda.is_available()
