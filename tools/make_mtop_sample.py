"""Writes the embedded MTOP English sample shipped in the package (CC BY-SA 4.0, see its README).

    python tools/make_mtop_sample.py ../shared/data/mtop/full pnlp_bench/assets/mtop_sample

A fixed-seed random subset of each split, in the original release layout, so the MTOP loader reads it
unchanged.
"""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

SIZES = {"train": 2000, "eval": 400, "test": 400}


def main(source: Path, target: Path) -> None:
    for split, size in SIZES.items():
        path = source / "en" / f"{split}.txt.gz"
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = handle.readlines()
        chosen = sorted(random.Random(f"mtop-sample-{split}").sample(range(len(lines)), size))
        out = target / "en" / f"{split}.txt.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0 keeps the archive bytes reproducible.
        with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            packed.write("".join(lines[index] for index in chosen).encode("utf-8"))
        print(f"{out}: {size} of {len(lines)} lines")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
