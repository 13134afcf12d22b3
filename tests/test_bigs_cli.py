"""`bench pretrain` then `bench run backbone=bigs ... init=<that run>`, in subprocesses, as a user types them."""

import json

import pytest

from helpers import compose_config
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.commands.run import run
from test_cli import bench

# a tiny budget; one thread because on a shared 2-core machine thread hand-offs cost more than tiny ops
SMOKE = ["trainer.num_threads=1", "quiet=true"]


@pytest.mark.shared
def test_pretrain_then_finetune_from_the_pretrain_run(shared_data, tmp_path):
    pretrained = bench(
        "pretrain", "trainer=mlm_smoke", "trainer.max_steps=6", "trainer.eval_every=3", "trainer.checkpoint_every=3",
        "data.train_limit=300", "data.eval_limit=40", "data.max_length=32", *SMOKE, cwd=tmp_path,
    )
    assert pretrained.returncode == 0, pretrained.stderr[-2000:]
    (record_path,) = (tmp_path / "outputs" / "runs" / "wikitext2").glob("bigs_tiny-*/metrics.json")
    record = json.loads(record_path.read_text())
    pretrain_dir = record_path.parent
    assert record["status"] == "finished" and record["task"] == "mlm" and record["variant"] == "gated+ssm"
    assert record["steps"] == 6 and record["tokens_seen"] == 6 * 16 * 32
    assert [row["step"] for row in record["history"]] == [3, 6]
    assert {"mlm_loss", "mlm_accuracy", "perplexity"} <= set(record["metrics"]["eval"]["avg"])
    assert "reduced budget" in record["budget"] and record["provenance"]["commit"]
    assert all((pretrain_dir / name).exists() for name in ("config.yaml", "best.pt", "last.pt"))
    assert "projection" not in (pretrain_dir / "config.yaml").read_text()  # pNLP-only nodes left out

    # the command, with a budget this machine can afford; positions 32 -> 64 are tiled
    finetuned = bench(
        "run", "backbone=bigs", "data=sst2", "trainer=smoke", "trainer.batch_size=64", "data.train_limit=64",
        "data.eval_limit=48", "data.max_length=64", f"init={pretrain_dir}", *SMOKE, cwd=tmp_path,
    )
    assert finetuned.returncode == 0, finetuned.stderr[-2000:]
    (record_path,) = (tmp_path / "outputs" / "runs" / "sst2").glob("*/metrics.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "finished" and record["task"] == "classification" and record["steps"] == 2
    assert set(record["metrics"]["eval"]["avg"]) == {"accuracy", "score", "examples"} and record["metrics"]["eval"]["avg"]["examples"] == 48
    assert record["init"]["file"] == str(pretrain_dir / "best.pt") and record["init"]["positions"] == "32 -> 64 (tiled)"
    assert record["init"]["fresh"] == ["classifier.bias", "classifier.weight", "pooler.dense.bias", "pooler.dense.weight"]
    assert "final epoch" in record["reporting"] and [row["epoch"] for row in record["history"]] == [1, 2]
    assert (record_path.parent / "best.pt").exists() and (record_path.parent / "last.pt").exists()


@pytest.mark.shared
def test_finetuning_starts_from_the_pretraining_its_init_names_by_identity(shared_data, tmp_path):
    from pnlp_bench.core import store
    from pnlp_bench.bigs.pipeline import bigs_options

    def pretraining(steps: int) -> list[str]:
        return [
            "task=mlm", "trainer=mlm_smoke", f"trainer.max_steps={steps}", f"trainer.eval_every={steps}", "data.train_limit=200",
            "data.eval_limit=20", "data.max_length=32", f"output_root={tmp_path}", *SMOKE,
        ]

    planned = run(compose_config(pretraining(2)), tmp_path / "pretrain-planned")
    newer = run(compose_config(pretraining(3)), tmp_path / "pretrain-newer")  # another budget, finished later
    assert planned["config_hash"] != newer["config_hash"]

    def finetuning(pretrained: str) -> list[str]:
        return [
            "backbone=bigs", "data=rte", "trainer=finetune_smoke", "trainer.max_steps=1", "trainer.batch_size=4",
            "data.train_limit=4", "data.eval_limit=4", "data.max_length=32", f"init=run:{pretrained}", f"output_root={tmp_path}", *SMOKE,
        ]

    record = run(compose_config(finetuning(planned["config_hash"])), tmp_path / "finetune")
    assert record["init"]["source"] == f"run:{planned['config_hash']} -> {tmp_path / 'pretrain-planned'}"
    # the pretraining is part of the fine-tune's identity: the other budget is another cell
    other = store.config_hash(bigs_options(compose_config(finetuning(newer["config_hash"]))))
    assert other != record["config_hash"]
    with pytest.raises(ConfigError, match="init=run:0123456789abcdef: no finished run with config hash 0123456789abcdef"):
        run(compose_config(finetuning("0123456789abcdef")), tmp_path / "finetune-missing")


def test_bigs_data_error_is_one_line(tmp_path):
    no_scrolls = bench("run", "backbone=bigs", "data=quality", cwd=tmp_path, env_extra={"BENCH_DATA_DIR": str(tmp_path)})
    assert no_scrolls.returncode != 0 and "SCROLLS quality: no train.jsonl" in no_scrolls.stderr
    assert "data.download=true" in no_scrolls.stderr and "Traceback" not in no_scrolls.stderr


def test_bigs_config_errors_name_the_key(tmp_path):
    # in-process: main() turns these ConfigErrors into one line, as test_data_error above shows end to end
    with pytest.raises(ConfigError, match="pNLP-Mixer data set"):
        run(compose_config(["backbone=bigs", "data=mtop_sample"]), tmp_path)
    with pytest.raises(ConfigError, match="init= starts from a pretrained BiGS encoder; it needs backbone=bigs"):
        run(compose_config(["init=somewhere"]), tmp_path)
    with pytest.raises(ConfigError, match="init=nowhere: no such run folder or checkpoint file"):
        run(compose_config(["backbone=bigs", "init=nowhere", "data=stsb", "data.train_limit=4", "data.eval_limit=4"]), tmp_path)
    with pytest.raises(ConfigError, match="data.monitor='mcc'; stsb reports pearson, spearman, score"):
        run(compose_config(["backbone=bigs", "data=stsb", "data.monitor=mcc", "data.train_limit=4", "data.eval_limit=4"]), tmp_path)
    with pytest.raises(ConfigError, match="trainer.schedule must be one of linear, cosine, constant"):
        run(compose_config(["backbone=bigs", "trainer.schedule=step"]), tmp_path)


def test_pretrain_preset_joins_the_overrides_not_the_flags():
    from pnlp_bench.cli import with_pretraining_preset

    assert with_pretraining_preset(["--cfg", "job", "model=bigs_small"]) == ["--cfg", "job", "task=mlm", "model=bigs_small"]
    assert with_pretraining_preset(["model=bigs_small", "--multirun"]) == ["task=mlm", "model=bigs_small", "--multirun"]
    assert with_pretraining_preset(["--help"]) == ["--help", "task=mlm"]


@pytest.mark.shared
def test_a_finished_bigs_run_is_not_run_again_and_reaches_the_store(shared_data, tmp_path):
    from pnlp_bench.core import store

    overrides = [
        "backbone=bigs", "data=rte", "trainer=finetune_smoke", "trainer.max_steps=1", "trainer.batch_size=4",
        "data.train_limit=4", "data.eval_limit=4", "data.max_length=32", f"output_root={tmp_path}", "quiet=true",
    ]
    first = run(compose_config(overrides), tmp_path / "run")
    again = run(compose_config(overrides), tmp_path / "run")
    assert again == first  # the record read back, nothing trained
    (stored,) = list(store.records(tmp_path))
    assert stored["config_hash"] == first["config_hash"] and stored["data"] == "rte" and "history" not in stored


def test_pnlp_only_options_are_refused_under_bigs(tmp_path):
    with pytest.raises(ConfigError, match="quantize.int8 evaluates pNLP-Mixer models"):
        run(compose_config(["backbone=bigs", "quantize.int8=true"]), tmp_path)
    with pytest.raises(ConfigError, match="trainer.compile=true is not wired to backbone=bigs"):
        run(compose_config(["backbone=bigs", "trainer=smoke", "trainer.compile=true"]), tmp_path)
    with pytest.raises(ConfigError, match="logger=wandb is not wired to backbone=bigs"):
        run(compose_config(["backbone=bigs", "logger=wandb"]), tmp_path)
