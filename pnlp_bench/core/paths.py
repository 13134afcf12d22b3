"""Where the project keeps its caches and looks for data."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # pnlp_bench/
ASSETS = PACKAGE_ROOT / "assets"
MBERT_CASED_VOCAB = ASSETS / "vocab" / "mbert-cased-vocab.txt"
BERT_UNCASED_VOCAB = ASSETS / "vocab" / "bert-uncased-vocab.txt"


def cache_dir() -> Path:
    """The cache root: `BENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/pnlp_bench`, else `~/.cache/pnlp_bench`."""
    if os.environ.get("BENCH_CACHE_DIR"):
        root = Path(os.environ["BENCH_CACHE_DIR"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pnlp_bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir_candidates() -> list[Path]:
    """Folders searched, in order, for the offline copies of the data sets.

    `BENCH_DATA_DIR` wins; then `./data`; then `../shared/data` beside the project checkout
    (where this project's developers and CI keep the real copies).
    """
    found: list[Path] = []
    if os.environ.get("BENCH_DATA_DIR"):
        found.append(Path(os.environ["BENCH_DATA_DIR"]).expanduser())
    found.append(Path.cwd() / "data")
    found.append(PACKAGE_ROOT.parent.parent / "shared" / "data")
    found.append(Path.cwd().parent / "shared" / "data")
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def resolve_data_root(root: str | None, subfolder: str) -> list[Path]:
    """The places a loader should look for `subfolder`: the explicit root alone when given."""
    if root:
        return [Path(root).expanduser()]
    return [base / subfolder for base in data_dir_candidates()]


def asset(path: str) -> Path:
    return Path(str(resources.files("pnlp_bench") / "assets" / path))
