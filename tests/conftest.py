"""Shared fixtures. Tests that need the real data in ../shared/data skip with a reason when it is absent,
and fail instead when BENCH_REQUIRE_SHARED=1 (as CI sets), so a missing copy can never pass silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Keep a user's cache untouched; CI points BENCH_CACHE_DIR at its checkout to reuse fingerprints.
    if not os.environ.get("BENCH_CACHE_DIR"):
        os.environ["BENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("bench-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"needs the offline data sets in {SHARED_DATA} (not present in this checkout)"
    if os.environ.get("BENCH_REQUIRE_SHARED") == "1":
        pytest.fail(f"BENCH_REQUIRE_SHARED=1 but {message}")
    pytest.skip(message)
