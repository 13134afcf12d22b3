"""Time IMDB featurization: pre-tokenizing the raw reviews into words, then `featurize` (unique words,
WordPiece + MinHash of each unique word once, word ids per document).

    python tools/bench_featurize.py [--root ../shared/data/imdb] [--splits train test] [--max-words 1024]

Prints one JSON line. The MinHash vocabulary table is computed (or read from the cache) before timing
starts, as in a run after the first.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import featurize
from pnlp_bench.mixer.data.imdb import LABELS
from pnlp_bench.mixer.data.text import numbered_lines, with_gz, words_of
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"))
    parser.add_argument("--splits", nargs="+", default=["train"])
    parser.add_argument("--max-words", type=int, default=1024)
    args = parser.parse_args()

    projection = MinHashProjection(MinHashConfig(feature_size=1024, num_hashes=64, window=0))
    projection.table  # noqa: B018  (warm the cached vocabulary table)
    texts = {
        split: [json.loads(line) for _, line in numbered_lines(with_gz(Path(args.root) / f"{split}.jsonl"))]
        for split in args.splits
    }
    started = time.perf_counter()
    splits = {
        split: [Example(f"{split}-{row['id']}", "en", words_of(row["text"]), LABELS[row["label"]]) for row in rows]
        for split, rows in texts.items()
    }
    tokenize_seconds = time.perf_counter() - started
    splits.setdefault("train", splits[args.splits[0]])
    started = time.perf_counter()
    data = featurize(splits, projection, args.max_words)
    featurize_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "splits": args.splits,
                "documents": sum(len(rows) for rows in texts.values()),
                "unique_words": int(data.word_table.indices.shape[0] - 1),
                "tokenize_seconds": round(tokenize_seconds, 2),
                "featurize_seconds": round(featurize_seconds, 2),
                "total_seconds": round(tokenize_seconds + featurize_seconds, 2),
                "torch_threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
