"""`bench speed projections`: every projection's training step through the bottleneck paths, as a ratio."""

from __future__ import annotations

import json

import pytest

from pnlp_bench.core.registry import ConfigError


def test_projections_report_rows_paths_and_the_auto_choice(tmp_path):
    from pnlp_bench.commands.speed.projections import main

    output = tmp_path / "speed_projections"
    assert main(["projections=[minhash,binary]", "paths=[bag,words]", "preset=xs", "batch_size=8", "repeats=1",
                 "repeat_seconds=0.01", "warmup=1", "threads=1", "precision=fp32", "quiet=true", f"output={output}"]) == 0
    result = json.loads(output.with_suffix(".json").read_text())
    rows = {row["projection"]: row for row in result["rows"]}
    assert set(rows) == {"minhash", "binary"}
    assert rows["minhash"]["auto_path"] == "bag" and not rows["minhash"]["weighted"]
    assert rows["binary"]["auto_path"] == "words" and rows["binary"]["weighted"]  # a value per bucket: one matmul a word
    assert rows["binary"]["active_per_word"] > 4 * rows["minhash"]["active_per_word"]
    for row in rows.values():
        assert row["ratio_to_baseline"]["bag"] == pytest.approx(1.0) and row["samples_per_second"]["words"] > 0
    text = output.with_suffix(".md").read_text()
    assert "| binary |" in text and "batch 8, S = 64" in text and "{" not in text  # every field formatted


@pytest.mark.parametrize("override, message", [("projections=[bert]", "projections must be"),
                                               ("paths=[auto]", "paths must be"), ("repeats=0", "warmup >= 1"), ("warmup=0", "warmup >= 1"), ("precision=fp16", "precision must be")])
def test_projections_refuses_bad_options(override, message):
    from pnlp_bench.commands.speed.projections import main

    with pytest.raises(ConfigError, match=message):
        main([override])


def test_under_bf16_every_projection_takes_the_words_path(tmp_path):
    from pnlp_bench.commands.speed.projections import main

    output = tmp_path / "bf16"
    assert main(["projections=[minhash,tsp]", "paths=[words]", "preset=xs", "batch_size=8", "repeats=1",
                 "repeat_seconds=0.01", "threads=1", "precision=bf16", "quiet=true", f"output={output}"]) == 0
    rows = json.loads(output.with_suffix(".json").read_text())["rows"]
    assert [(row["precision"], row["auto_path"]) for row in rows] == [("bf16", "words"), ("bf16", "words")]
