"""`bench speed length`: time and peak memory of a BiGS layer stack against an attention stack, per length.

What is compared is declared in `experiments/bigs_length.yaml`: the lengths, the variants (arch+routing of
`pnlp_bench/bigs/model.py`: gated+ssm = BiGS, stack+attention = BERT with `scaled_dot_product_attention`,
and the other two of the paper's Table 1), the baseline the ratios are taken against, the issue's targets,
and per profile (`gpu`, `cpu`, `smoke`) the width, the depths (matched by parameters), tokens per step,
warm-up and repetitions.

One training step is forward + backward of the encoder stack built by the project's `BiGSModel` (its
`.encoder`; embeddings and heads are not timed) on random hidden states, with bf16 autocast on CUDA (the
SSM's kernel and FFTs stay fp32, as in training). The batch is max(1, tokens_per_step // length), so every
length does the same work in tokens until one sequence is longer than that.

Timing, as `bench speed` does it (the machine may be shared): warm-up steps, the last of which also measures
the step's peak memory (`harness.PeakMemory`: CUDA max_memory_allocated, or the growth of the CPU process's
peak resident set); then `repeats` repetitions that alternate between the variants of a length, each of
whole steps for at least `repeat_seconds` between two synchronisations. Ratios against the baseline are taken
repetition by repetition, so that both sides of a ratio share the same background load. A variant whose warm
step runs past `max_step_seconds`, or that runs out of memory, is marked skipped at that length and at every
longer one, and the run goes on. At the end the SSM path as timed is checked against the plain recurrence
at the longest length (float64, on the CPU), so a speed figure never stands for different numerics.

`bench speed length [--quick] [key=value ...]`, e.g. `bench speed length profile=cpu lengths=[128,512]`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from pnlp_bench.bigs.model import SSM, BiGSConfig, BiGSEncoder, BiGSModel
from pnlp_bench.commands.speed.harness import (
    choose_threads,
    hardware,
    load_averages,
    parse_overrides,
    progress_log,
    provenance_lines,
    resolve_device,
    synchronize,
    write_report,
)
from pnlp_bench.commands.speed.length_timing import measure_length, training_step
from pnlp_bench.core.device import resolve_precision
from pnlp_bench.core.provenance import provenance
from pnlp_bench.core.registry import ConfigError, typed_config

VARIANTS = ("gated+ssm", "stack+attention", "gated+attention", "stack+ssm")
LABELS = {
    "gated+ssm": "GATED+SSM (BiGS)",
    "stack+attention": "STACK+attention (BERT)",
    "gated+attention": "GATED+attention",
    "stack+ssm": "STACK+SSM",
}
PROFILE_FOR_DEVICE = {"cuda": "gpu", "cpu": "cpu"}
NUMERICS_CHANNELS = 4  # the kernel is shared by all channels, so a few channels test it fully
NUMERICS_TOLERANCE = 1e-4  # max |FFT path - recurrence| / max |recurrence|; fp32 FFTs at 16K give about 2e-6
GPU_COMMAND = "bench speed length profile=gpu device=cuda"


@dataclass
class LengthProfile:
    """Model and timing of one profile of the experiment file."""

    description: str = ""
    hidden_size: int = 128
    state_size: int = 64
    num_heads: int = 2
    width: dict[str, int] = field(default_factory=lambda: {"gated": 384, "stack": 512})
    depth: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"gated": {"ssm": 3, "attention": 2}, "stack": {"ssm": 4, "attention": 3}}
    )
    parameters: dict[str, int] = field(default_factory=dict)  # what each stack comes to (tests check it)
    tokens_per_step: int = 16384
    warmup: int = 1  # the last warm-up step measures peak memory, so at least 1
    repeats: int = 3
    repeat_seconds: float = 0.5
    max_step_seconds: float = 120.0
    # 0 by default: with dropout, CPU attention leaves the flash kernel for the math one (L x L scores),
    # which would time a different attention than the one the comparison is about
    dropout: float = 0.0

    def validate(self, where: str) -> None:
        for arch in ("gated", "stack"):
            if arch not in self.width or any(routing not in self.depth.get(arch, {}) for routing in ("ssm", "attention")):
                raise ConfigError(f"{where}: width needs gated and stack, depth gated/stack x ssm/attention")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"{where}: hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.tokens_per_step < 1 or self.warmup < 1 or self.repeats < 1:
            raise ConfigError(f"{where}: tokens_per_step, warmup and repeats must be >= 1")
        if self.repeat_seconds < 0 or self.max_step_seconds <= 0:
            raise ConfigError(f"{where}: repeat_seconds >= 0 and max_step_seconds > 0")
        unknown = sorted(set(self.parameters) - set(VARIANTS))
        if unknown:
            raise ConfigError(f"{where}: parameters of unknown variant {unknown[0]!r}; valid: {', '.join(VARIANTS)}")


@dataclass
class LengthExperiment:
    """experiments/bigs_length.yaml, parsed."""

    path: Path
    title: str
    lengths: list[int]
    variants: list[str]
    baseline: str
    targets: list[dict[str, Any]]
    profiles: dict[str, LengthProfile]


@dataclass
class LengthConfig:
    """`bench speed length` options; None means: what the experiment file's profile says."""

    profile: str = "auto"  # auto: gpu on CUDA, cpu otherwise; or any profile of the experiment file
    device: str = "auto"  # auto (cuda when present), cpu, cuda, cuda:N
    lengths: list[int] | None = None
    variants: list[str] | None = None
    baseline: str | None = None
    tokens_per_step: int | None = None
    warmup: int | None = None
    repeats: int | None = None
    repeat_seconds: float | None = None
    max_step_seconds: float | None = None
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with native bf16, else fp32 (as the trainer)
    threads: int = 0  # torch CPU threads; 0 = auto (harness.choose_threads)
    numerics: bool = True  # check the timed SSM path against the recurrence at the longest length
    seed: int = 0
    experiment: str = "experiments/bigs_length.yaml"
    output: str = "results/bigs_length"  # writes <output>.md and <output>.json
    quiet: bool = False


# `--quick`: short lengths and few repetitions, well under a minute on 2 CPU cores.
QUICK = {"lengths": [128, 256, 512], "tokens_per_step": 2048, "warmup": 1, "repeats": 2, "repeat_seconds": 0.2}


@dataclass
class Plan:
    """Everything a run does, resolved from the experiment file and the command line."""

    experiment: LengthExperiment
    profile_name: str
    profile: LengthProfile  # with the command line's timing overrides applied
    lengths: list[int]
    variants: list[str]
    baseline: str
    device: torch.device
    bf16: bool
    config: LengthConfig


def parse_config(overrides: Sequence[str], quick: bool) -> LengthConfig:
    """LengthConfig from `key=value` overrides (lists as `[a,b]`); `--quick` defaults come first."""
    config: LengthConfig = parse_overrides(LengthConfig, QUICK if quick else None, overrides, "speed length")
    if config.precision not in {"auto", "fp32", "bf16"}:
        raise ConfigError(f"speed length: precision must be auto, fp32 or bf16, got {config.precision!r}")
    if config.threads < 0:
        raise ConfigError("speed length: threads must be >= 0")
    return config


def experiment_path(name: str) -> Path:
    """The file as given, else relative to the project root (so the command works from anywhere in it)."""
    path = Path(name)
    if path.exists() or path.is_absolute():
        return path
    return Path(__file__).resolve().parents[3] / path


def load_experiment(name: str) -> LengthExperiment:
    path = experiment_path(name)
    if not path.exists():
        raise ConfigError(f"speed length: no experiment file {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    missing = [key for key in ("lengths", "variants", "baseline", "profiles") if key not in raw]
    if missing:
        raise ConfigError(f"{path}: missing key {missing[0]!r}")
    profiles = {
        name: typed_config(LengthProfile, options or {}, f"{path.name}: profiles.{name}")
        for name, options in raw["profiles"].items()
    }
    return LengthExperiment(
        path=path, title=str(raw.get("title", path.stem)), lengths=[int(n) for n in raw["lengths"]],
        variants=list(raw["variants"]), baseline=str(raw["baseline"]), targets=list(raw.get("targets", [])),
        profiles=profiles,
    )


def make_plan(config: LengthConfig) -> Plan:
    """Checks every name and number against the experiment file before any work starts (ConfigError)."""
    experiment = load_experiment(config.experiment)
    device = resolve_device(config.device, "speed length")
    profile_name = PROFILE_FOR_DEVICE[device.type] if config.profile == "auto" else config.profile
    if profile_name not in experiment.profiles:
        raise ConfigError(f"speed length: unknown profile {profile_name!r}; valid: {', '.join(experiment.profiles)}")
    timing = {key: getattr(config, key) for key in ("tokens_per_step", "warmup", "repeats", "repeat_seconds", "max_step_seconds")}
    profile = dataclasses.replace(
        experiment.profiles[profile_name], **{key: value for key, value in timing.items() if value is not None}
    )
    profile.validate(f"speed length: profile {profile_name}")
    variants = list(config.variants if config.variants is not None else experiment.variants)
    for variant in variants:
        if variant not in VARIANTS:
            raise ConfigError(f"speed length: unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if not variants or len(set(variants)) != len(variants):
        raise ConfigError("speed length: variants must be a non-empty list without repeats")
    baseline = config.baseline or experiment.baseline
    if baseline not in variants:
        raise ConfigError(f"speed length: the baseline {baseline!r} must be among the variants (ratios are against it)")
    lengths = sorted(set(config.lengths if config.lengths is not None else experiment.lengths))
    if not lengths or lengths[0] < 1:
        raise ConfigError("speed length: lengths must be a non-empty list of positive token counts")
    bf16 = resolve_precision(config.precision, device) == "bf16"
    return Plan(experiment, profile_name, profile, lengths, variants, baseline, device, bf16, config)


# ---------------------------------------------------------------- the stacks


def stack_config(profile: LengthProfile, variant: str) -> BiGSConfig:
    arch, routing = variant.split("+")
    return BiGSConfig(
        # the embeddings are built only so the encoder gets the model's own initialisation; they are dropped
        vocab_size=1, max_position_embeddings=1, type_vocab_size=1,
        hidden_size=profile.hidden_size, num_layers=profile.depth[arch][routing],
        intermediate_size=profile.width[arch], state_size=profile.state_size, num_heads=profile.num_heads,
        arch=arch, routing=routing, dropout=profile.dropout,  # type: ignore[arg-type]
    )


def build_stack(profile: LengthProfile, variant: str) -> BiGSEncoder:
    """The encoder layer stack of `variant` (built on the current default device; `meta` works for counting)."""
    return BiGSModel(stack_config(profile, variant)).encoder


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# ---------------------------------------------------------------- numerics, targets, run


def ssm_numerics(stacks: dict[str, torch.nn.Module], length: int, device: torch.device) -> list[dict[str, Any]]:
    """Every SSM of the timed stacks: its FFT path as timed (fp32 on the run's device) against the step-by-step
    recurrence of the same module in float64 on the CPU, on the same random input."""
    inputs = torch.randn(1, length, NUMERICS_CHANNELS, generator=torch.Generator().manual_seed(0))
    checks = []
    for variant, stack in stacks.items():
        for name, module in stack.named_modules():
            if not isinstance(module, SSM):
                continue
            with torch.no_grad():
                timed = module(inputs.to(device)).double().cpu()
                exact = copy.deepcopy(module).cpu().double().recurrence(inputs.double())
            error = ((timed - exact).abs().max() / exact.abs().max()).item()
            checks.append({"variant": variant, "module": name, "length": length, "relative_error": error,
                           "passed": error <= NUMERICS_TOLERANCE})
    return checks


def target_rows(plan: Plan, rows: list[dict[str, Any]], gpu_name: str | None) -> list[dict[str, Any]]:
    found = {(row["variant"], row["length"]): row for row in rows}
    targets = []
    for target in plan.experiment.targets:
        row = found.get((target["variant"], target["length"]))
        ratio = None if row is None else row["throughput_ratio"]
        on_device = gpu_name is not None and str(target["device"]).lower() in gpu_name.lower()
        entry = {**target, "measured_ratio": ratio, "met": None}
        if row is None:
            entry["status"] = "not in this run (variant or length left out)"
        elif on_device and ratio is not None:
            entry["met"] = ratio >= target["min_throughput_ratio"]
            entry["status"] = f"measured on {gpu_name}"
        elif on_device:
            entry["status"] = f"{row['variant']} or the baseline skipped at this length on {gpu_name}: {row['reason'] or 'baseline skipped'}"
        else:
            here = gpu_name or "the CPU"
            entry["status"] = (f"pending: needs an {target['device']} run (`{GPU_COMMAND}`); the ratio shown is "
                               f"from {here}, not the target's device")
        targets.append(entry)
    return targets


def run_length(plan: Plan, command: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.perf_counter()
    device, profile = plan.device, plan.profile
    threads_reason = choose_threads(plan.config.threads)
    result: dict[str, Any] = {
        "kind": "bench speed length", "command": command, "config": dataclasses.asdict(plan.config),
        "experiment": {"path": str(plan.experiment.path.name), "title": plan.experiment.title},
        "profile": {"name": plan.profile_name, **dataclasses.asdict(profile)},
        "lengths": plan.lengths, "baseline": plan.baseline,
        "precision": "bf16 autocast (SSM kernel and FFTs fp32)" if plan.bf16 else "fp32",
        "provenance": provenance(device), "hardware": {**hardware(device), "torch_threads_reason": threads_reason},
    }
    stacks: dict[str, torch.nn.Module] = {}
    variants = []
    for variant in plan.variants:
        torch.manual_seed(plan.config.seed)
        stacks[variant] = build_stack(profile, variant).to(device).train()
        arch, routing = variant.split("+")
        variants.append({"variant": variant, "label": LABELS[variant], "arch": arch, "routing": routing,
                         "layers": profile.depth[arch][routing], "width": profile.width[arch],
                         "parameters": parameter_count(stacks[variant])})
    result["variants"] = variants
    # one step of every variant at the shortest length before anything is measured: one-time costs (thread
    # pools, allocator arenas, library workspaces) then land on no measured step, whichever variant runs first
    inputs = torch.randn(1, min(plan.lengths[0], 64), profile.hidden_size, device=device, requires_grad=True)
    for stack in stacks.values():
        training_step(stack, inputs, torch.randn_like(inputs), plan.bf16)()
    del inputs
    synchronize(device)
    rows: list[dict[str, Any]] = []
    stopped: dict[str, str] = {}
    for length in plan.lengths:
        log(f"length {length} (batch {max(1, profile.tokens_per_step // length)})")
        for row in measure_length(plan, stacks, length, stopped, log):
            rows.append(row)
            if row["status"] == "measured":
                log(f"  {row['variant']:16s} {row['ms_per_step']['median']:10.1f} ms/step  "
                    f"{row['tokens_per_second']['median']:12,.0f} tokens/s  peak {_number(row.get('peak_memory_mb'))} MB  "
                    f"x{_number(row['throughput_ratio'], 2)} vs {plan.baseline}")
    result["rows"] = rows
    result["skipped"] = [{"variant": r["variant"], "length": r["length"], "reason": r["reason"]}
                         for r in rows if r["status"] == "skipped"]
    ssm_stacks = {variant: stack for variant, stack in stacks.items() if variant.endswith("+ssm")}
    if plan.config.numerics and ssm_stacks:
        log(f"numerics: the SSM path against the recurrence at length {plan.lengths[-1]}")
        result["numerics"] = ssm_numerics(ssm_stacks, plan.lengths[-1], device)
    else:
        result["numerics"] = []
    result["targets"] = target_rows(plan, rows, result["hardware"]["gpu"]["name"] if result["hardware"]["gpu"] else None)
    result["wall_seconds"] = time.perf_counter() - started
    result["hardware"]["load_average_at_end"] = load_averages()
    return result


# ---------------------------------------------------------------- report


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def _cells(result: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> list[str]:
    """One markdown row per length, one cell per variant: `render(row)` when measured, else `skipped`."""
    by_key = {(row["variant"], row["length"]): row for row in result["rows"]}
    lines = []
    for length in result["lengths"]:
        cells = []
        for variant in (v["variant"] for v in result["variants"]):
            row = by_key[(variant, length)]
            cells.append(render(row) if row["status"] == "measured" else "skipped")
        batch = by_key[(result["variants"][0]["variant"], length)]["batch"]
        lines.append(f"| {length:,} | {batch} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    prov, hw, profile = result["provenance"], result["hardware"], result["profile"]
    on_cuda = hw["gpu"] is not None
    baseline_label = LABELS[result["baseline"]]
    header = "| length | batch | " + " | ".join(v["label"] for v in result["variants"]) + " |"
    rule = "|---|---|" + "---|" * len(result["variants"])
    lines = [
        f"# {result['experiment']['title']} (`bench speed length`)",
        "",
        f"Command: `{result['command']}`, {result['wall_seconds']:.0f} s in one process; "
        f"profile `{profile['name']}` of `experiments/{result['experiment']['path']}`: {profile['description']}.",
        *provenance_lines(prov, hw, "no GPU."),
        f"Precision: {result['precision']}.",
        "",
    ]
    if not on_cuda:
        lines += [
            f"**Every figure here is a CPU figure** ({hw['cpu_cores']} shared cores, at the load averages above), from a "
            "profile far smaller than the issue's. The issue's target is on an H100 and is **pending**: no GPU ran. "
            f"To measure it: `{GPU_COMMAND}`.",
            "",
        ]
    lines += [
        "Method: one step = forward + backward of the encoder layer stack (no embeddings, head or optimizer; "
        "gradients freed after each step) on random hidden states, batch = max(1, "
        f"{profile['tokens_per_step']:,} // length). {profile['warmup']} warm-up step(s), the last of which measures "
        f"the peak memory; then {profile['repeats']} repetitions alternating between the variants, each of whole steps "
        f"for at least {profile['repeat_seconds']:g} s; medians with the range over repetitions. Ratios are against "
        f"{baseline_label}, repetition by repetition: throughput = its time / the variant's (> 1: faster), memory = "
        "the variant's peak / its peak (< 1: less). Peak memory = weights + the transient peak of one warm step "
        + ("(CUDA max_memory_allocated)" if on_cuda else "(growth of the process's peak resident set)")
        + "; the input hidden states and their gradient (the same for every variant) are not counted. Attention is "
        f"`F.scaled_dot_product_attention` (dropout {profile['dropout']:g}). A variant whose step passes "
        f"{profile['max_step_seconds']:g} s or runs out of memory is skipped there and at longer lengths.",
        "",
        "## Variants (encoder stacks matched by parameters)",
        "",
        "| variant | arch | routing | layers | width | parameters | vs GATED+SSM |",
        "|---|---|---|---|---|---|---|",
    ]
    reference = next((v["parameters"] for v in result["variants"] if v["variant"] == "gated+ssm"), None)
    for v in result["variants"]:
        relative = "–" if reference is None else f"{100 * (v['parameters'] / reference - 1):+.1f}%"
        lines.append(f"| {v['label']} | {v['arch']} | {v['routing']} | {v['layers']} | {v['width']:,} | {v['parameters']:,} | {relative} |")
    lines += ["", "## Time per training step (ms: median, range over repetitions)", "", header, rule]
    lines += _cells(result, lambda r: f"{_number(r['ms_per_step']['median'], 1)} ({_number(r['ms_per_step']['min'], 1)}–{_number(r['ms_per_step']['max'], 1)})")
    lines += ["", f"## Throughput (tokens/s; × {baseline_label})", "", header, rule]
    lines += _cells(result, lambda r: f"{_number(r['tokens_per_second']['median'])} ({_times(r['throughput_ratio'])})")
    lines += ["", f"## Peak memory (MB; × {baseline_label})", "", header, rule]
    lines += _cells(result, lambda r: f"{_number(r.get('peak_memory_mb'), 1)} ({_times(r['memory_ratio'])})")
    lines += ["", "## Targets (the issue's)", "", "| target | needs | measured ratio | met | status |", "|---|---|---|---|---|"]
    for target in result["targets"]:
        met = "–" if target["met"] is None else ("yes" if target["met"] else "**no**")
        lines.append(f"| {target['text']} ({target['device']}) | ≥ {target['min_throughput_ratio']:g}× | "
                     f"{_times(target['measured_ratio'])} | {met} | {target['status']} |")
    lines += ["", "## Numerics: the timed SSM path against the recurrence", ""]
    if result["numerics"]:
        worst = max(check["relative_error"] for check in result["numerics"])
        passed = all(check["passed"] for check in result["numerics"])
        lines += [
            f"Every SSM of the timed SSM stacks ({len(result['numerics'])} modules), its FFT path as timed (fp32, on "
            f"{hw['training_device']}) against the step-by-step recurrence x_l = Ābar x_(l-1) + B̄ u_l, y_l = Re(C x_l) + D u_l "
            f"of the same module in float64, at length {result['numerics'][0]['length']:,} ({NUMERICS_CHANNELS} channels): "
            f"max |FFT − recurrence| / max |recurrence| = {worst:.1e}, tolerance {NUMERICS_TOLERANCE:g}: "
            + ("**passed**." if passed else "**FAILED**."),
        ]
    else:
        lines.append("Not checked in this run (no SSM variant, or numerics=false).")
    if result["skipped"]:
        lines += ["", "## Skipped", ""]
        lines += [f"- {LABELS[s['variant']]} at {s['length']:,} tokens: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines) + "\n"


def print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench speed length: ms per step, peak MB, × {LABELS[result['baseline']]}")
    table.add_column("length", justify="right")
    for variant in result["variants"]:
        table.add_column(variant["label"], justify="right")
    by_key = {(row["variant"], row["length"]): row for row in result["rows"]}
    for length in result["lengths"]:
        cells = []
        for variant in (v["variant"] for v in result["variants"]):
            row = by_key[(variant, length)]
            cells.append("skipped" if row["status"] != "measured" else
                         f"{row['ms_per_step']['median']:,.1f} ms, {_number(row.get('peak_memory_mb'))} MB, {_times(row['throughput_ratio'])}")
        table.add_row(f"{length:,}", *cells)
    Console().print(table)


def main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="bench speed length",
        description="Training-step time and peak memory of BiGS against attention per sequence length "
                    "(experiments/bigs_length.yaml, pnlp_bench/commands/speed/length.py).",
        epilog="options as key=value: " + ", ".join(field.name for field in dataclasses.fields(LengthConfig)),
    )
    parser.add_argument("--quick", action="store_true", help="lengths 128-512, few repetitions (well under a minute on a CPU)")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. profile=cpu lengths=[128,512] variants=[gated+ssm,stack+attention]")
    args = parser.parse_args(list(argv))
    plan = make_plan(parse_config(args.overrides, args.quick))
    command = " ".join(["bench speed length", *(["--quick"] if args.quick else []), *args.overrides])
    result = run_length(plan, command, log=progress_log(plan.config.quiet))
    json_path, md_path = write_report(result, plan.config.output, render=render_markdown)
    if not plan.config.quiet:
        print_summary(result)
    print(f"wrote {md_path} and {json_path}")
    return 0
