"""`bench speed length` builds the stacks the experiment file describes, reports every variant and length, and
marks what it cannot measure instead of failing. Correctness only: no test asserts a time."""

import json

import pytest
import torch

from pnlp_bench import cli
from pnlp_bench.commands import table as tables
from pnlp_bench.commands.speed import length as speed_length
from pnlp_bench.commands.speed import length_timing
from pnlp_bench.bigs.model import SSM, GatedBlock
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.provenance import native_bf16_cpu
from pnlp_bench.commands.speed.length import (
    LABELS,
    VARIANTS,
    build_stack,
    load_experiment,
    make_plan,
    parameter_count,
    parse_config,
)

TINY = ["profile=smoke", "device=cpu", "lengths=[16,32]", "quiet=true"]


def plan_of(*overrides: str, quick: bool = False):
    return make_plan(parse_config(list(overrides), quick))


def test_the_shipped_experiment_declares_the_issue_lengths_and_variants():
    experiment = load_experiment("experiments/bigs_length.yaml")
    assert experiment.lengths == [128, 512, 1024, 2048, 4096, 8192, 16384]
    assert {"gated+ssm", "stack+attention"} <= set(experiment.variants) and experiment.baseline == "stack+attention"
    assert {"gpu", "cpu", "smoke"} <= set(experiment.profiles)
    assert {(t["variant"], t["length"], t["min_throughput_ratio"]) for t in experiment.targets} == {
        ("gated+ssm", 4096, 1.0), ("gated+ssm", 16384, 2.0)}


@pytest.mark.parametrize("profile", ["gpu", "cpu", "smoke"])
def test_stacks_have_the_parameter_counts_the_profile_states_matched_within_ten_percent(profile):
    config = load_experiment("experiments/bigs_length.yaml").profiles[profile]
    assert set(config.parameters) == set(VARIANTS)
    counts = {}
    for variant in VARIANTS:
        with torch.device("meta"):  # the gpu profile's stacks without allocating them
            counts[variant] = parameter_count(build_stack(config, variant))
    assert counts == config.parameters
    for variant, count in counts.items():
        assert abs(count / counts["gated+ssm"] - 1) <= 0.10, (variant, count)


def test_attention_variants_run_scaled_dot_product_attention(monkeypatch):
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    profile = load_experiment("experiments/bigs_length.yaml").profiles["smoke"]
    for variant, expected in [("stack+attention", 3), ("gated+attention", 4), ("gated+ssm", 0), ("stack+ssm", 0)]:
        calls.clear()
        build_stack(profile, variant)(torch.randn(2, 8, profile.hidden_size))
        assert len(calls) == expected, variant  # GATED has two attentions per layer, one per branch


def test_config_errors_are_one_line_and_name_the_key_or_value():
    with pytest.raises(ConfigError, match="bogus.*valid keys: profile"):
        parse_config(["bogus=1"], quick=False)
    with pytest.raises(ConfigError, match="repeats"):
        parse_config(["repeats=many"], quick=False)
    with pytest.raises(ConfigError, match="expected key=value, got 'lengths'"):
        parse_config(["lengths"], quick=False)
    with pytest.raises(ConfigError, match="precision must be auto, fp32 or bf16, got 'fp16'"):
        parse_config(["precision=fp16"], quick=False)
    with pytest.raises(ConfigError, match="unknown variant 'gated\\+rnn'; valid: gated\\+ssm, stack\\+attention"):
        plan_of("variants=[gated+ssm,gated+rnn]")
    with pytest.raises(ConfigError, match="unknown profile 'huge'; valid: gpu, cpu, smoke"):
        plan_of("profile=huge")
    with pytest.raises(ConfigError, match="baseline 'stack\\+attention' must be among the variants"):
        plan_of("variants=[gated+ssm]")
    with pytest.raises(ConfigError, match="lengths"):
        plan_of("lengths=[0,128]")
    with pytest.raises(ConfigError, match="warmup and repeats must be >= 1"):
        plan_of("repeats=0")
    with pytest.raises(ConfigError) as error:
        parse_config(["bogus=1"], quick=False)
    assert "\n" not in str(error.value)


def test_quick_defaults_yield_to_overrides_and_profiles_follow_the_device():
    plan = plan_of("lengths=[64,32]", "device=cpu", quick=True)
    assert plan.lengths == [32, 64] and plan.profile.repeats == 2 and plan.profile.tokens_per_step == 2048
    assert plan.profile_name == "cpu" and plan.bf16 == native_bf16_cpu() and plan.profile.hidden_size == 64
    assert not plan_of("device=cpu", "precision=fp32").bf16
    assert plan_of("device=cpu", "precision=bf16").bf16


def test_unknown_key_in_a_profile_of_the_experiment_file_is_named(tmp_path):
    text = (speed_length.experiment_path("experiments/bigs_length.yaml")).read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("    tokens_per_step: 64\n", "    tokens_per_stp: 64\n"))
    with pytest.raises(ConfigError, match="profiles.smoke: unknown key 'tokens_per_stp'"):
        plan_of(f"experiment={broken}")


def test_tiny_run_writes_every_variant_and_length_with_the_baseline_at_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["speed", "length", *TINY, f"output={tmp_path}/length", "--quiet"])
    assert exit_code.value.code == 0
    result = json.loads((tmp_path / "length.json").read_text())
    markdown = (tmp_path / "length.md").read_text()
    assert [(row["length"], row["variant"]) for row in result["rows"]] == [(n, v) for n in (16, 32) for v in VARIANTS]
    for row in result["rows"]:
        assert row["status"] == "measured" and row["batch"] == 64 // row["length"]
        assert row["ms_per_step"]["min"] <= row["ms_per_step"]["median"] <= row["ms_per_step"]["max"]
        assert row["throughput_ratio"] > 0
        if row["variant"] == "stack+attention":
            assert row["throughput_ratio"] == 1.0 and row["memory_ratio"] in (1.0, None)
    assert result["numerics"] and all(check["passed"] for check in result["numerics"])
    assert len(result["numerics"]) == 2 * 3 + 2 * 4  # forward and backward SSM of every SSM layer
    assert result["provenance"]["commit"] and result["hardware"]["load_average_at_start"]
    for label in LABELS.values():
        assert label in markdown
    assert "| 16 | 4 |" in markdown and "| 32 | 2 |" in markdown and "pending" in markdown
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, then renamed


def test_lengths_over_the_time_cap_or_out_of_memory_are_marked_and_the_run_goes_on(tmp_path, monkeypatch):
    real_step = length_timing.training_step

    def gated_attention_runs_out_of_memory_from_32(stack, inputs, grad_output, bf16):
        layer = stack.layers[0]
        if inputs.shape[1] >= 32 and isinstance(layer, GatedBlock) and not isinstance(layer.forward_routing, SSM):
            def failing() -> None:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")
            return failing
        return real_step(stack, inputs, grad_output, bf16)

    # measure_length (length_timing.py) builds every timed step
    monkeypatch.setattr(length_timing, "training_step", gated_attention_runs_out_of_memory_from_32)
    plan = plan_of(*TINY, "lengths=[16,32,48]", "numerics=false")
    result = speed_length.run_length(plan, "test", log=lambda message: None)
    status = {(row["variant"], row["length"]): row for row in result["rows"]}
    assert status[("gated+attention", 16)]["status"] == "measured"
    assert "out of memory at batch 2 x 32" in status[("gated+attention", 32)]["reason"]
    assert status[("gated+attention", 48)]["status"] == "skipped"  # not tried again at a longer length
    assert status[("gated+ssm", 48)]["status"] == "measured"
    assert status[("gated+attention", 32)]["throughput_ratio"] is None

    capped = speed_length.run_length(plan_of(*TINY, "max_step_seconds=1e-9", "numerics=false"), "test", log=lambda m: None)
    assert all(row["status"] == "skipped" for row in capped["rows"])
    assert "over max_step_seconds" in capped["rows"][0]["reason"]
    markdown = speed_length.render_markdown({**capped, "wall_seconds": 0.0})
    assert "| 32 | 2 | skipped | skipped | skipped | skipped |" in markdown and "## Skipped" in markdown


def test_bench_tables_does_not_take_the_speed_experiment_for_a_table(monkeypatch):
    monkeypatch.chdir(speed_length.experiment_path("experiments").parent)
    assert "bigs_length" not in [tables.table_name(path) for path in tables.spec_files()]
    with pytest.raises(ConfigError, match="no table 'bigs_length'"):
        tables.load_spec("bigs_length")
