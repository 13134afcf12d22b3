"""The write-up of a `bench speed` result: fast/reference ratios, the issues' targets with their
measurements, FLOP bounds, the markdown report and the ratio table printed at the end of a run."""

from __future__ import annotations

import math
from typing import Any

import torch

from pnlp_bench.commands.speed.harness import provenance_lines, ratio_or_none
from pnlp_bench.commands.speed.workload import IMDB_TRAIN_DOCUMENTS, PRESET_NAMES


def add_flop_bounds(result: dict) -> None:
    """Bound every training figure by the best matmul rate the run saw on this device (the square matmul or
    any model's own shape, whichever was faster): at that rate, FLOPs per sample allow at most this many
    samples/s, whatever else the step does. The machine is shared, so the rate is the best seen, not a spec."""
    rates = [result["peak_matmul"]["gflops"], *(item["analysis"]["gemm_gflops"] for item in result["training"])]
    best = max(rates)
    result["peak_matmul"]["best_gflops_seen"] = best
    for item in result["training"]:
        item["analysis"]["best_rate_bound_samples_per_second"] = best * 1e9 / item["fast"]["flops_per_sample"]


def ratios(result: dict) -> list[dict[str, Any]]:
    """fast / reference for every figure ("better" says which way is better for it)."""
    rows = []
    for item in result["featurization"]:
        rows.append({"figure": f"featurization {item['dataset']} (words/s)", "fast": item["fast"]["words_per_second"],
                     "reference": item["reference"]["words_per_second"], "ratio": item["ratio"], "better": "higher"})
    for item in result["training"]:
        name = f"training {item['dataset']} S={item['seq_len']} {PRESET_NAMES[item['preset']]}"
        rows.append({"figure": f"{name} (samples/s, {item['device']})", "fast": item["fast"]["samples_per_second"]["median"],
                     "reference": item["reference"]["samples_per_second"]["median"], "ratio": item["ratio"], "better": "higher"})
        if "plain" in item:
            rows.append({"figure": f"{name} against the plain path (fp32, not padding-aware) (samples/s, {item['device']})",
                         "fast": item["fast"]["samples_per_second"]["median"],
                         "reference": item["plain"]["samples_per_second"]["median"], "ratio": item["ratio_to_plain"],
                         "better": "higher"})
        rows.append({"figure": f"{name} (peak MB, {item['memory_measure']})", "fast": item["fast"]["peak_memory_mb"],
                     "reference": item["reference"]["peak_memory_mb"], "ratio": item["memory_ratio"], "better": "lower"})
    for item in result["latency"]:
        reference_rows = {(row["scope"], row["threads"]): row for row in item["rows"] if row["path"] == "reference"}
        for row in item["rows"]:
            if row["path"] == "reference":
                continue
            # every end-to-end variant against the reference's end to end (words in, prediction out)
            baseline = reference_rows[("model" if row["scope"] == "model" else "end_to_end", row["threads"])]
            path = "" if row["path"] == "fast" else f" ({row['path']})"
            for stat in ("p50_ms", "p99_ms"):
                rows.append({
                    "figure": f"latency {PRESET_NAMES[item['preset']]} {row['precision']} {row['scope'].replace('_', ' ')}{path}, "
                              f"{row['threads']} thread(s) ({stat.removesuffix('_ms')}, ms)",
                    "fast": row[stat], "reference": baseline[stat], "ratio": ratio_or_none(row[stat], baseline[stat]),
                    "better": "lower",
                })
        predictor_rows = {row["threads"]: row for row in item["rows"] if (row["path"], row["scope"]) == ("predictor", "end_to_end")}
        for row in item["rows"]:
            if row["path"] != "onnx" or row["threads"] not in predictor_rows:
                continue
            # onnxruntime against the torch single-utterance path too: the two ways to serve one utterance
            predictor = predictor_rows[row["threads"]]
            rows.append({
                "figure": f"latency {PRESET_NAMES[item['preset']]} fp32 end to end (onnx) against the predictor (warm), "
                          f"{row['threads']} thread(s) (p50, ms)",
                "fast": row["p50_ms"], "reference": predictor["p50_ms"], "ratio": ratio_or_none(row["p50_ms"], predictor["p50_ms"]),
                "better": "lower",
            })
    return rows


def _training(result: dict, dataset: str, preset: str) -> dict | None:
    return next((t for t in result["training"] if t["dataset"] == dataset and t["preset"] == preset), None)


def targets(result: dict, device: torch.device, goals: dict[str, float]) -> list[dict[str, Any]]:
    """Each target of issue 4 (`goals`: `bench.py`'s TARGETS) with its measurement here, or why it is pending."""
    on_h100 = device.type == "cuda" and "H100" in torch.cuda.get_device_name(device)
    rows = []
    for dataset, key, label in (("multiatis", "multiatis_base_train_h100", "multiATIS BASE training on an H100"),
                                ("imdb", "imdb_base_train_h100", "IMDB BASE training on an H100")):
        goal = goals[key]
        figures = _training(result, dataset, "base")
        row = {"target": f"{label} >= {goal:,.0f} samples/s", "goal": goal, "unit": "samples/s", "measured": None, "met": None}
        if figures is None:
            row["status"] = "not measured (data set or preset not in this run)"
        else:
            rate = figures["fast"]["samples_per_second"]["median"]
            flops = figures["fast"]["flops_per_sample_by_bottleneck_path"]["dense"]  # the GPU's path
            row["needs_tflops"] = goal * flops / 1e12
            row["gpu_path_gflops_per_sample"] = flops / 1e9
            if on_h100:
                row.update(measured=rate, met=rate >= goal, status="measured")
            else:
                row.update(
                    status=f"pending: needs an H100 (this run trained on {result['hardware']['training_device']})",
                    here=rate,
                    here_bound=figures["analysis"]["best_rate_bound_samples_per_second"],
                )
        rows.append(row)
    imdb = next((f for f in result["featurization"] if f["dataset"] == "imdb"), None)
    goal = goals["imdb_featurize_seconds"]
    row = {"target": f"featurize all 25,000 IMDB training documents (tokenization included) < {goal:.0f} s",
           "goal": goal, "unit": "s", "measured": None, "met": None}
    if imdb is None:
        row["status"] = "not measured (imdb not in this run)"
    else:
        seconds = imdb["fast"]["seconds"]["median"]
        if imdb["fast"]["texts"] >= IMDB_TRAIN_DOCUMENTS:
            row.update(measured=seconds, met=seconds < goal, status="measured")
        else:
            estimate = seconds * IMDB_TRAIN_DOCUMENTS / imdb["fast"]["texts"]
            row.update(status=f"extrapolated from {imdb['fast']['texts']:,} documents", estimate=estimate)
    rows.append(row)
    goal = goals["fingerprint_table_seconds"]
    table_seconds = result["fingerprint_table"]["seconds"]["median"]
    rows.append({"target": f"fingerprint table cold build < {goal:.0f} s", "goal": goal, "unit": "s",
                 "measured": table_seconds, "met": table_seconds < goal, "status": "measured"})
    goal = goals["base_latency_p50_ms"]
    base = next((item for item in result["latency"] if item["preset"] == "base"), None)
    row = {"target": f"BASE single-utterance CPU latency p50 < {goal:g} ms (words in, prediction out)", "goal": goal,
           "unit": "ms", "measured": None, "met": None}
    if base is None:
        row["status"] = "not measured (base not in latency_presets)"
    else:
        # the fastest thread count of each end-to-end variant: the padded model (fp32, int8) and the predictor
        variants = {precision: ("fast", "end_to_end", precision) for precision in ("fp32", "int8")}
        variants |= {f"predictor_{scope}": ("predictor", scope, "fp32") for scope in ("end_to_end", "end_to_end_cold_cache")}
        variants["onnx_end_to_end"] = ("onnx", "end_to_end", "fp32")
        for key, (path, scope, precision) in variants.items():
            candidates = [r for r in base["rows"] if (r["path"], r["scope"], r["precision"]) == (path, scope, precision)]
            if candidates:
                best = min(candidates, key=lambda r: r["p50_ms"])
                row[f"{key}_p50_ms"] = best["p50_ms"]
                row[f"{key}_threads"] = best["threads"]
        measured = {key: value for key, value in row.items() if key.endswith("_p50_ms")}
        row["measured_by"] = min(measured, key=measured.get) if measured else None
        row["measured"] = min(measured.values(), default=math.inf)
        row["met"] = row["measured"] < goal
        row["status"] = "measured (best thread count; fp32" + (" and int8" if "int8_p50_ms" in row else " only: " + base["int8"]) + \
            (", model and predictor)" if any(key.startswith("predictor") for key in measured) else ")")
    rows.append(row)
    rows += cpu_targets(result, device, goals)
    return rows


def cpu_targets(result: dict, device: torch.device, goals: dict[str, float]) -> list[dict[str, Any]]:
    """The CPU speed issue's targets (2 cores, `goals` as for `targets`): each measured on this run's CPU, or why not."""
    rows = []
    on_cpu = device.type == "cpu"
    goal = goals["cpu_base_train"]
    for dataset in ("multiatis", "mtop_sample"):
        figures = _training(result, dataset, "base")
        row = {"target": f"CPU: BASE training on {dataset} >= {goal:,.0f} samples/s", "goal": goal, "unit": "samples/s",
               "measured": None, "met": None}
        if figures is None or not on_cpu:
            row["status"] = "not measured (not trained on the CPU in this run)"
        else:
            rate = figures["fast"]["samples_per_second"]["median"]
            row.update(measured=rate, met=rate >= goal, status=f"measured on {result['hardware']['cpu']}")
            profiled = figures["analysis"].get("step_profile")
            if profiled and profiled["matmul_only_bound_samples_per_second"]:
                row["matmul_only_bound"] = profiled["matmul_only_bound_samples_per_second"]
        rows.append(row)
    goal = goals["cpu_ratio_to_plain"]
    for dataset, preset in (("multiatis", "xlarge"), ("imdb", "base")):
        figures = _training(result, dataset, preset)
        row = {"target": f"CPU: {PRESET_NAMES[preset]} on {dataset} >= {goal:g}× the plain path", "goal": goal, "unit": "×",
               "measured": None, "met": None}
        if figures is None or not on_cpu or "ratio_to_plain" not in figures:
            row["status"] = "not measured (data set or preset not trained on the CPU in this run)"
        else:
            row.update(measured=figures["ratio_to_plain"], met=figures["ratio_to_plain"] >= goal, status="measured")
        rows.append(row)
    goal = goals["predictor_p50_one_thread_ms"]
    base = next((item for item in result["latency"] if item["preset"] == "base"), None)
    row = {"target": f"CPU: BASE MixerPredictor p50 <= {goal:g} ms on one thread (warm word cache)", "goal": goal, "unit": "ms",
           "measured": None, "met": None}
    chosen = [r for r in (base or {}).get("rows", [])
              if (r["path"], r["scope"], r["threads"]) == ("predictor", "end_to_end", 1)]
    if chosen:
        row.update(measured=chosen[0]["p50_ms"], met=chosen[0]["p50_ms"] <= goal, status="measured")
    else:
        row["status"] = "not measured (BASE or one thread not in the latency figures)"
    rows.append(row)
    return rows


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else (f"{ratio:,.1f}×" if ratio >= 10 else f"{ratio:.2f}×")


def render_markdown(result: dict) -> str:
    prov, hw, config = result["provenance"], result["hardware"], result["config"]
    on_cuda = hw["gpu"] is not None
    lines = [
        "# Speed: the project's path against the dense reference (`bench speed`)",
        "",
        f"Command: `{result['command']}` ({'quick profile' if '--quick' in result['command'] else 'full profile'}), "
        f"{result['wall_seconds']:.0f} s in one process.",
        *provenance_lines(prov, hw, "no GPU (training on the CPU)."),
        "",
        "Method: warm-up first, then timed repetitions with CUDA synchronisation around each; medians, with the",
        "range over repetitions. The reference is `pnlp_bench/mixer/reference.py`: dense per-sample float count vectors of",
        "size (2w+1)·F built on the CPU for every sample (with this project's fingerprints, so it computes the same",
        "numbers) and a dense `nn.Linear` bottleneck, as public implementations do. Ratios are fast / reference.",
        "The machine is shared (2 cores, other developers' jobs), so single figures are noisy; same-process ratios",
        "are the robust reading.",
        "",
    ]
    if not on_cuda:
        lines += [
            "## GPU (H100) figures: pending",
            "",
            "This run had no GPU, so the H100 targets are not measured yet. To measure them on an H100:",
            "`bench speed device=cuda compile=true` (fast path: featurized splits and word table resident on the",
            "device, no DataLoader workers, bf16 autocast, fused Adam, the dense bottleneck path, torch.compile,",
            "batch 4096 on multiATIS and 256 on IMDB). The FLOP rates those targets need are in the targets table.",
            "",
        ]
    lines += ["## Summary (fast / reference)", ""]
    for label, prefix, suffix in (
        ("featurization, words/s", "featurization", "(words/s)"),
        ("training, samples/s", "training", "samples/s"),
        ("training, peak memory", "training", "peak MB"),
        ("latency p50, end to end", "latency", "end to end"),
        ("latency p50, model", "latency", "model"),
    ):
        chosen = [row["ratio"] for row in result["ratios"] if row["figure"].startswith(prefix) and suffix in row["figure"]
                  and (prefix != "latency" or "(p50" in row["figure"]) and row["ratio"] is not None]
        if chosen:
            lines.append(f"- {label}: {_times(min(chosen))} to {_times(max(chosen))} over {len(chosen)} figures")
    lines += ["", "## Targets", "", "| target | measured | met | notes |", "|---|---|---|---|"]
    for row in result["targets"]:
        measured = "–" if row["measured"] is None else f"{_number(row['measured'], 2)} {row['unit']}"
        met = "–" if row["met"] is None else ("yes" if row["met"] else "**no**")
        notes = [row["status"]]
        if "needs_tflops" in row:
            notes.append(f"needs {row['needs_tflops']:.0f} TFLOP/s of matmuls sustained ({row['gpu_path_gflops_per_sample']:.3f} "
                         "GFLOP/sample on the GPU's dense-bottleneck path × target)")
        if "here" in row:
            notes.append(f"here: {_number(row['here'])} samples/s, FLOP bound at the best matmul rate seen here {_number(row['here_bound'])}")
        if "estimate" in row:
            notes.append(f"estimate for 25,000: {row['estimate']:.1f} s")
        if "matmul_only_bound" in row:
            notes.append(f"the step's own matmuls alone allow at most {_number(row['matmul_only_bound'])} samples/s (step profile below)")
        for key, label in (("fp32", "model fp32"), ("int8", "model int8"), ("predictor_end_to_end", "predictor fp32, warm word cache"),
                           ("predictor_end_to_end_cold_cache", "predictor fp32, cold word cache"),
                           ("onnx_end_to_end", "onnxruntime fp32")):
            if f"{key}_p50_ms" in row:
                notes.append(f"{label} {row[f'{key}_p50_ms']:.2f} ms ({row[f'{key}_threads']} thread(s))")
        lines.append(f"| {row['target']} | {measured} | {met} | {'; '.join(notes)} |")
    table = result["fingerprint_table"]
    lines += [
        "",
        "## 1. Featurization (CPU)",
        "",
        f"Fingerprint table, cold (empty temporary BENCH_CACHE_DIR): {table['seconds']['median']:.2f} s "
        f"(range {table['seconds']['min']:.2f}–{table['seconds']['max']:.2f}) for {table['entries']:,} × {table['num_hashes']}.",
        f"Projection of preset `{config['featurize_preset']}`. Fast: the project's `featurize` over the whole split "
        "(unique words tokenized once, table look-ups, int16 buckets), table warm. Reference: per sample, dense.",
        "",
        "| data | S | fast texts | fast words/s | fast time (s) | reference texts | reference words/s | reference ms/text | dense MB/text | fast/reference |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["featurization"]:
        fast, reference = item["fast"], item["reference"]
        split = fast["pre_tokenize_seconds"]
        time_text = f"{fast['seconds']['median']:.2f}" + (f" (pre-tokenize {split['median']:.2f})" if split else "")
        lines.append(
            f"| {item['dataset']} | {item['seq_len']} | {fast['texts']:,} | {_number(fast['words_per_second'])} | {time_text} | "
            f"{reference['texts']:,} | {_number(reference['words_per_second'])} | {reference['ms_per_text']:.2f} | "
            f"{reference['dense_megabytes_per_text']:.2f} | {_times(item['ratio'])} |"
        )
    lines += [
        "",
        "## 2. Training throughput and peak memory",
        "",
        "One optimizer step per batch (forward, loss, backward, Adam). Fast: the trainer's `train_step` on batches",
        "gathered from the word table; reference: dense features built per sample in the loop. Peak memory = what a",
        "path keeps between steps (weights, Adam state" + (", device-resident featurized data" if on_cuda else "")
        + ") + the transient peak of one warm step (gradients, batch, activations; "
        + ("CUDA peak allocated)." if on_cuda else "growth of the process's peak RSS)."),
        "",
        "Repetitions alternate fast, reference, fast, …; fast/ref is the median of the per-pair ratios.",
        "",
        "| data | S | preset | params | fast batch | fast samples/s (range) | ref batch | ref samples/s (range) | fast/ref | fast MB | ref MB | MB fast/ref |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["training"]:
        fast, reference = item["fast"], item["reference"]
        fr, rr = fast["samples_per_second"], reference["samples_per_second"]
        lines.append(
            f"| {item['dataset']} | {item['seq_len']} | {PRESET_NAMES[item['preset']]} | {item['parameters']:,} | {fast['batch_size']} | "
            f"{_number(fr['median'], 1)} ({_number(fr['min'], 1)}–{_number(fr['max'], 1)}) | {reference['batch_size']} | "
            f"{_number(rr['median'], 1)} ({_number(rr['min'], 1)}–{_number(rr['max'], 1)}) | {_times(item['ratio'])} | "
            f"{_number(fast['peak_memory_mb'])} | {_number(reference['peak_memory_mb'])} | {_times(item['memory_ratio'])} |"
        )
    plain_rows = [item for item in result["training"] if "plain" in item]
    if plain_rows:
        lines += [
            "",
            "Against the project's plain path (the same step in fp32, so with the bag bottleneck, and without padding-aware",
            "compute: the CPU default before the speed work), timed in the same alternation; fast/plain is the median of the",
            "per-pair ratios. Every path ran with the host allocator a CPU training run sets (`trainer.host_allocator=auto`).",
            "",
            "| data | S | preset | fast precision | bottleneck | fast samples/s | plain samples/s (range) | fast/plain |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for item in plain_rows:
            pr = item["plain"]["samples_per_second"]
            lines.append(
                f"| {item['dataset']} | {item['seq_len']} | {PRESET_NAMES[item['preset']]} | {item['precision']} | "
                f"{item['fast']['bottleneck'].split(' ')[0]} | {_number(item['fast']['samples_per_second']['median'], 1)} | "
                f"{_number(pr['median'], 1)} ({_number(pr['min'], 1)}–{_number(pr['max'], 1)}) | {_times(item['ratio_to_plain'])} |"
            )
    lines += [
        "",
        "### What limits training here: FLOPs per sample against the matmul rate this machine sustains",
        "",
        "FLOPs per sample: forward + backward matmuls counted by torch's FlopCounterMode (gathers, scatters and",
        "elementwise work not included), for the bottleneck path this device runs. Shape: the model's channel-mixing",
        "matmul [batch·S, B] @ [B, 256] timed alone. Best rate: the fastest matmul rate this run saw here, "
        + f"{result['peak_matmul']['best_gflops_seen']:.0f} GFLOP/s",
        f"({result['peak_matmul']['dtype']}; a {'×'.join(map(str, result['peak_matmul']['shape']))} matmul gave "
        + f"{result['peak_matmul']['gflops']:.0f}); best rate / FLOPs per sample bounds samples/s whatever else a",
        "step does. Achieved = measured samples/s × FLOPs per sample.",
        "",
        "| data | preset | precision | fast GFLOP/sample | ref GFLOP/sample | achieved GFLOP/s | shape GFLOP/s | bound at shape rate | bound at best rate | measured samples/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for item in result["training"]:
        analysis = item["analysis"]
        lines.append(
            f"| {item['dataset']} | {PRESET_NAMES[item['preset']]} | {item['precision']} | {item['fast']['flops_per_sample'] / 1e9:.3f} | "
            f"{item['reference']['flops_per_sample'] / 1e9:.3f} | {analysis['achieved_gflops']:.1f} | {analysis['gemm_gflops']:.0f} | "
            f"{_number(analysis['gemm_shape_bound_samples_per_second'])} | {_number(analysis['best_rate_bound_samples_per_second'])} | "
            f"{_number(item['fast']['samples_per_second']['median'])} |"
        )
    lines += step_profile_lines(result)
    lines += ["", "## 3. Single-utterance latency (CPU, batch 1)", ""]
    for item in result["latency"]:
        lines += [
            f"### {PRESET_NAMES[item['preset']]} ({item['data']}, S = {item['seq_len']}, {item['calls']} calls over "
            f"{item['utterances']} utterances; {item['int8']}; {item.get('onnx', 'onnx: not measured')})",
            "",
            "| path | precision | scope | threads | p50 ms | p99 ms | mean ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in item["rows"]:
            lines.append(f"| {row['path']} | {row['precision']} | {row['scope'].replace('_', ' ')} | {row['threads']} | "
                         f"{row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {row['mean_ms']:.3f} |")
        lines.append("")
    lines += [
        "End to end: words in (WordPiece, fingerprint look-up, features), prediction out. Model: features given.",
        "WordPiece runs on the calling thread (TOKENIZERS_PARALLELISM=false): for one utterance its thread pool costs",
        "more than it saves. Variants take turns in blocks of 25 calls (the first 5 calls of a block not counted), so",
        "they share the background load while each runs on caches holding its own weights, as a one-model service does.",
        "Paths `fast` and `reference` run the model over the full S positions, as training does.",
        "",
        "Path `predictor` is `pnlp_bench.mixer.inference.MixerPredictor`, the single-utterance path: each word's 2w+1",
        "bottleneck vectors cached (LRU), the padding rows (all equal) entering the first token mixing once through",
        "suffix sums of its weight, and the last block and the head computed on the n word rows only. Same maths as",
        "the model (tests/test_inference.py); its predictions agreed with the model's on "
        + ", ".join(f"{item['analysis']['predictor_agreement']} of {item['utterances']} utterances ({PRESET_NAMES[item['preset']]})"
                    for item in result["latency"] if "predictor_agreement" in item["analysis"]) + ".",
        "Warm: every timed utterance was seen in the warm-up, as in a running service; cold cache: the cache is",
        "emptied before every call, so each word is tokenized and projected again.",
        "",
        "Path `onnx` is the same weights exported by `pnlp_bench.mixer.export.onnx.export_onnx` (the dense bottleneck, the",
        "mixer over all S positions, standard ops) and served by its `OnnxPredictor` on onnxruntime's CPU provider, one",
        "session per thread count: words looked up in the exported table (the timed utterances' words, so every",
        "look-up hits, like the warm cache), padded to S, the graph run, labels and tags decoded. Its predictions",
        "agreed with the model's on "
        + (", ".join(f"{item['analysis']['onnx_agreement']} of {item['utterances']} utterances ({PRESET_NAMES[item['preset']]})"
                     for item in result["latency"] if "onnx_agreement" in item["analysis"]) or "– (not measured)") + ".",
        "",
        "What bounds it: the forward's matmul FLOPs (FlopCounterMode) over the best rate one core of this machine",
        "reached on the model's channel-mixing shape [S, B] @ [B, 256] or on a 1024³ matmul (one thread each):",
        "",
        "| preset | forward MFLOP | one core, model shape (GFLOP/s) | one core, 1024³ (GFLOP/s) | FLOP bound (ms) "
        "| predictor MFLOP (median utterance) | predictor FLOP bound (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in result["latency"]:
        analysis = item["analysis"]
        predictor = (f"{analysis['predictor_median_flops'] / 1e6:.1f} ({analysis['median_words']:.0f} words) | "
                     f"{analysis['predictor_flop_bound_ms']:.2f}") if "predictor_median_flops" in analysis else "– | –"
        lines.append(
            f"| {PRESET_NAMES[item['preset']]} | {analysis['forward_flops'] / 1e6:.1f} | {analysis['one_core_shape_gflops']:.1f} | "
            f"{analysis['one_core_square_gflops']:.1f} | {analysis['flop_bound_ms']:.2f} | {predictor} |"
        )
    lines.append("")
    lines += ["## 4. Ratios (fast / reference)", "", "| figure | fast | reference | fast/reference | better |", "|---|---|---|---|---|"]
    for row in result["ratios"]:
        lines.append(f"| {row['figure']} | {_number(row['fast'], 3)} | {_number(row['reference'], 3)} | {_times(row['ratio'])} | {row['better']} |")
    for skipped in result["skipped"]:
        lines.append(f"\nSkipped {skipped['dataset']}: {skipped['reason']}")
    return "\n".join(lines) + "\n"


def step_profile_lines(result: dict) -> list[str]:
    profiled = [item for item in result["training"] if item["analysis"].get("step_profile")]
    if not profiled:
        return []
    categories = list(dict.fromkeys(name for item in profiled for name in item["analysis"]["step_profile"]["shares"]))
    lines = [
        "",
        "### Where a fast step's time goes (torch profiler, self time per op on the calling thread)",
        "",
        "Share of the profiled steps' wall time per op category (`STEP_CATEGORIES` in `pnlp_bench/commands/speed/harness.py`; ops",
        "inside Adam's step count as the optimizer; \"outside ops\" is Python and autograd bookkeeping). Matmul-only",
        "bound: samples/s if every op but the matmuls took no time, from the matmuls' own time in the step; matmul",
        "rate in step: the counted FLOPs over that time. Profiled steps are slower than timed ones; shares are the reading.",
        "",
        "| data | preset | " + " | ".join(categories) + " | matmul rate in step (GFLOP/s) | matmul-only bound (samples/s) | measured samples/s |",
        "|---|---|" + "---|" * (len(categories) + 3),
    ]
    for item in profiled:
        step = item["analysis"]["step_profile"]
        shares = " | ".join(f"{100 * step['shares'].get(name, 0.0):.0f}%" for name in categories)
        lines.append(
            f"| {item['dataset']} | {PRESET_NAMES[item['preset']]} | {shares} | {_number(step['matmul_gflops_in_step'])} | "
            f"{_number(step['matmul_only_bound_samples_per_second'])} | {_number(item['fast']['samples_per_second']['median'])} |"
        )
    return lines


def print_ratios(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="bench speed: fast / reference")
    for column in ("figure", "fast", "reference", "fast/ref", "better"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for row in result["ratios"]:
        table.add_row(row["figure"], _number(row["fast"], 3), _number(row["reference"], 3), _times(row["ratio"]), row["better"])
    console = Console()
    console.print(table)
    for row in result["targets"]:
        met = "–" if row["met"] is None else ("met" if row["met"] else "NOT met")
        measured = "" if row["measured"] is None else f" measured {_number(row['measured'], 2)} {row['unit']},"
        console.print(f"target: {row['target']}:{measured} {met} ({row['status']})", highlight=False)
