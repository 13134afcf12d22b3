"""CPU inference latency of a preset in fp32 and as the real int8 copy (`quantize.mode=dynamic`).

    python tools/bench_int8.py [--model mixer_base] [--data imdb] [--batch 64] [--repeats 5]

Random word features (the latency does not depend on their values), the data config's max_length and
head, untrained weights. Prints one JSON line: milliseconds per batch (median), the speed-up and the
weight size.

Not a duplicate of `bench speed`: its int8 figures are single-utterance latency (batch 1, short utterances,
section 3 of `results/speed.md`); this tool times whole batches at the data set's own length (IMDB: 1,024
words by default) and reports the fp32 and int8 weight sizes, which `bench speed` does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from omegaconf import OmegaConf

from pnlp_bench.core.compose import compose
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import Featurized, LabelSpace
from pnlp_bench.mixer.quantize import int8_copy
from pnlp_bench.core.registry import typed_config
from pnlp_bench.mixer.pipeline import build_model


def median_ms(model, features, mask, repeats: int) -> float:
    times = []
    with torch.no_grad():
        model(features, mask)
        for _ in range(repeats):
            started = time.perf_counter()
            model(features, mask)
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mixer_base")
    parser.add_argument("--data", default="imdb")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    cfg = compose([f"model={args.model}", f"data={args.data}"])
    data_config = typed_config(DataConfig, OmegaConf.to_container(cfg.data, resolve=True), "data")
    tags = [f"T{i}" for i in range(151)] if data_config.head == "intent_slots" else []
    labels = LabelSpace(labels=[f"L{i}" for i in range(2 if not tags else 113)], tags=tags)
    model = build_model(cfg, data_config, Featurized(word_table=None, splits={}, labels=labels)).eval()
    quantized, report = int8_copy(model, "dynamic")

    torch.manual_seed(0)
    shape = (args.batch, data_config.max_length, cfg.projection.num_hashes)
    features = torch.randint(0, cfg.projection.feature_size, shape, dtype=torch.int16)
    mask = torch.ones(args.batch, data_config.max_length, dtype=torch.bool)
    fp32_ms = median_ms(model, features, mask, args.repeats)
    int8_ms = median_ms(quantized, features, mask, args.repeats)
    print(
        json.dumps(
            {
                "model": args.model,
                "data": args.data,
                "batch": args.batch,
                "max_length": data_config.max_length,
                "fp32_ms": round(fp32_ms, 1),
                "int8_ms": round(int8_ms, 1),
                "speedup": round(fp32_ms / int8_ms, 2),
                "size_mb_fp32": round(report["size_bytes_fp32"] / 1e6, 2),
                "size_mb_int8": round(report["size_bytes_int8"] / 1e6, 2),
                "torch_threads": torch.get_num_threads(),
                "engine": torch.backends.quantized.engine,
            }
        )
    )


if __name__ == "__main__":
    main()
