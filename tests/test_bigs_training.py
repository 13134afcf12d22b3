"""BiGS pretraining and fine-tuning pieces: masking, the MLM loss, schedules, init loading, presets, short runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from pnlp_bench.bigs.checkpoints import extend_positions, initialise
from pnlp_bench.bigs.config import BiGSBackboneConfig, BiGSTrainerConfig
from pnlp_bench.bigs.finetune import finetune
from pnlp_bench.bigs.masking import IGNORE_INDEX, mask_tokens
from pnlp_bench.bigs.optim import lr_factor, parameter_groups
from pnlp_bench.bigs.pipeline import bigs_options, parse_configs
from pnlp_bench.bigs.pretrain import masked_lm_loss, pretrain
from pnlp_bench.bigs.tokenization import encode_examples, vocabulary
from pnlp_bench.core.run_log import read_history
from pnlp_bench.bigs.data.text_tasks import TextExample
from pnlp_bench.core.metrics import score_text_task
from pnlp_bench.bigs.model import BiGSConfig, BiGSForMaskedLM, BiGSModel
from pnlp_bench.core.registry import ConfigError

from helpers import compose_config

VOCAB = vocabulary()


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models on a shared 2-core machine: thread hand-offs cost more than the arithmetic
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_batch(rows: int, length: int, seed: int = 0) -> torch.Tensor:
    """[CLS] ordinary tokens [SEP] then padding, with a different amount of padding per row."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((rows, length), VOCAB.pad, dtype=torch.long)
    for row in range(rows):
        used = int(torch.randint(length // 2, length + 1, (1,), generator=generator))
        ids[row, :used] = torch.randint(VOCAB.first_ordinary, VOCAB.size, (used,), generator=generator)
        ids[row, 0], ids[row, used - 1] = VOCAB.cls, VOCAB.sep
    return ids


def test_masking_statistics():
    ids = random_batch(2048, 128)
    masked, labels = mask_tokens(ids, VOCAB, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE_INDEX
    maskable = (ids != VOCAB.pad) & (ids != VOCAB.cls) & (ids != VOCAB.sep)
    # exactly round(15%) of each sequence's maskable tokens, never a special token
    assert torch.equal(chosen.sum(1), torch.round(maskable.sum(1) * 0.15).long())
    assert not (chosen & ~maskable).any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])
    total = int(chosen.sum())
    to_mask = (masked == VOCAB.mask) & chosen
    kept = (masked == ids) & chosen
    replaced = chosen & ~to_mask & ~kept
    assert to_mask.sum() / total == pytest.approx(0.8, abs=0.01)
    # a random replacement can draw the original token (1 in 29,523): counted as kept, negligible here
    assert replaced.sum() / total == pytest.approx(0.1, abs=0.01)
    assert kept.sum() / total == pytest.approx(0.1, abs=0.01)
    assert masked[replaced].min() >= VOCAB.first_ordinary  # random tokens are ordinary words


def test_masking_cap_seed_and_device_independence():
    ids = random_batch(64, 128)
    _, capped = mask_tokens(ids, VOCAB, torch.Generator().manual_seed(0), max_predictions=5)
    assert (capped != IGNORE_INDEX).sum(1).max() == 5
    first = mask_tokens(ids, VOCAB, torch.Generator().manual_seed(3))
    again = mask_tokens(ids, VOCAB, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    only_specials = torch.tensor([[VOCAB.cls, VOCAB.sep, VOCAB.pad]])
    assert (mask_tokens(only_specials, VOCAB, torch.Generator())[1] == IGNORE_INDEX).all()


def tiny_mlm(**overrides) -> BiGSForMaskedLM:
    torch.manual_seed(0)
    base = dict(vocab_size=VOCAB.size, hidden_size=32, num_layers=2, intermediate_size=64, state_size=8, max_position_embeddings=32, num_heads=2)
    return BiGSForMaskedLM(BiGSConfig(**{**base, **overrides}))


def test_mlm_loss_is_the_cross_entropy_at_the_masked_positions_only():
    model = tiny_mlm().eval()
    ids = random_batch(4, 32)
    inputs, labels = mask_tokens(ids, VOCAB, torch.Generator().manual_seed(0))
    loss, count, correct = masked_lm_loss(model, inputs, labels)
    full = model(inputs).logits
    chosen = labels != IGNORE_INDEX
    by_hand = F.cross_entropy(full[chosen], labels[chosen])
    assert count == int(chosen.sum()) and loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert loss.item() == pytest.approx(model(inputs, labels=labels).loss.item(), rel=1e-5)
    assert correct == int((full[chosen].argmax(-1) == labels[chosen]).sum())
    # changing the (ignored) label of an unmasked position cannot change the loss
    other = labels.clone()
    other[~chosen] = IGNORE_INDEX
    assert masked_lm_loss(model, inputs, other)[0].item() == pytest.approx(loss.item())


def test_warmup_then_decay_schedules():
    assert lr_factor(0, 10, 100, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 10, 100, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(55, 10, 100, "linear") == pytest.approx(0.5)
    assert lr_factor(99, 10, 100, "constant") == 1.0


def test_ssm_parameters_get_their_own_group():
    model = tiny_mlm()
    groups = {g["name"]: g for g in parameter_groups(model, BiGSTrainerConfig(lr=1e-3, weight_decay=0.05, ssm_lr=1e-4, ssm_weight_decay=0.0))}
    assert groups["ssm (A, dt, C, D)"]["lr"] == 1e-4 and groups["ssm (A, dt, C, D)"]["weight_decay"] == 0.0
    assert sum(p.numel() for g in groups.values() for p in g["params"]) == sum(p.numel() for p in model.parameters())
    assert all(p.ndim == 1 for p in groups["no_decay (biases, LayerNorm)"]["params"])


def test_init_from_a_pretraining_checkpoint_tiles_positions_and_keeps_the_encoder(tmp_path):
    model = tiny_mlm(max_position_embeddings=16)
    torch.save(
        {"model": model.state_dict(), "bigs_config": vars(model.config), "task": "mlm", "data": "wikitext2"},
        tmp_path / "best.pt",
    )
    backbone = BiGSBackboneConfig(hidden_size=999, dropout=0.0)  # the checkpoint's architecture wins
    loaded, report = initialise(str(tmp_path), backbone, "classification", 3, max_length=40, data_name="sst2")
    assert loaded.config.hidden_size == 32 and loaded.config.max_position_embeddings == 40 and loaded.config.dropout == 0.0
    positions = loaded.backbone.embeddings.position_embeddings.weight
    original = model.backbone.embeddings.position_embeddings.weight
    assert torch.equal(positions[:16], original) and torch.equal(positions[16:32], original) and torch.equal(positions[32:], original[:8])
    layer = "encoder.layers.1.forward_routing.C_re"
    assert torch.equal(loaded.backbone.state_dict()[layer], model.backbone.state_dict()[layer])
    assert report["fresh"] == ["classifier.bias", "classifier.weight", "pooler.dense.bias", "pooler.dense.weight"]
    assert report["positions"] == "16 -> 40 (tiled)" and "hidden_size" in report["architecture"]
    assert torch.equal(extend_positions(original, 8), original)


# encoder parameters of the presets, matched by depth (conf/model/bigs_*.yaml document them)
PRESET_ENCODERS = {
    "bigs_mini": {("gated", "ssm"): 860_688, ("gated", "attention"): 941_184, ("stack", "ssm"): 895_512, ("stack", "attention"): 793_088},
    "bigs_small": {("gated", "ssm"): 27_320_352, ("gated", "attention"): 24_952_320, ("stack", "ssm"): 28_379_184, ("stack", "attention"): 28_371_456},
    "bigs_large": {("gated", "ssm"): 313_842_268, ("gated", "attention"): 319_078_400, ("stack", "ssm"): 311_782_020, ("stack", "attention"): 302_309_376},
}


@pytest.mark.parametrize("preset", sorted(PRESET_ENCODERS))
def test_presets_match_parameters_across_the_four_variants(preset):
    for (arch, routing), expected in PRESET_ENCODERS[preset].items():
        cfg = compose_config([f"model={preset}", f"arch={arch}", f"routing={routing}"])
        _, backbone, _ = parse_configs(bigs_options(cfg))
        with torch.device("meta"):  # counting needs shapes only
            encoder = BiGSModel(backbone.bigs_config(vocab_size=VOCAB.size)).encoder
        assert sum(p.numel() for p in encoder.parameters()) == expected, (arch, routing)
    spread = max(PRESET_ENCODERS[preset].values()) / min(PRESET_ENCODERS[preset].values())
    assert spread < (1.2 if preset == "bigs_mini" else 1.14)  # within ~10% of GATED+SSM: one layer's granularity


def tiny_backbone(**overrides) -> BiGSBackboneConfig:
    return BiGSBackboneConfig(**{"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "state_size": 8, "max_position_embeddings": 32, **overrides})


@pytest.mark.parametrize("kind", ["regression", "multiple_choice"])
def test_finetune_runs_regression_and_multiple_choice(tmp_path, kind, caplog):
    from pnlp_bench.bigs.checkpoints import build_for_task

    caplog.set_level("INFO", logger="pnlp_bench.train")
    torch.manual_seed(0)
    if kind == "regression":
        examples = [TextExample(str(i), f"sentence {i}", f"other {i}", label=float(i % 5)) for i in range(24)]
        metric, monitor = "glue_stsb", "pearson"
    else:
        examples = [TextExample(str(i), "which?", "a story", label=i % 3, choices=["red", "green", "blue"]) for i in range(24)]
        metric, monitor = "accuracy", "accuracy"
    model = build_for_task(tiny_backbone().bigs_config(VOCAB.size), kind, 0)
    encoded = {"train": encode_examples(examples, 32), "eval": encode_examples(examples[:8], 32)}
    labels = {"train": [e.label for e in examples], "eval": [e.label for e in examples[:8]]}
    result = finetune(
        model, kind, encoded, labels, lambda g, p: score_text_task(metric, g, p), monitor,
        # resident_data=true takes the copy-once path that CUDA takes by default
        BiGSTrainerConfig(epochs=2, batch_size=8, lr=1e-3, resident_data="true" if kind == "regression" else "false"),
        tmp_path, 0, VOCAB.pad, {"task": kind}, quiet=True,
    )
    assert [row["epoch"] for row in result["history"]] == [1, 2] and result["steps"] == 6
    assert monitor in result["metrics"]["eval"] and result["best"]["epoch"] in (1, 2)
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert read_history(tmp_path / "history.jsonl") == result["history"]
    # the cost of a step, from the epochs' training time and the loop's peak memory (the long-input comparison)
    cost = result["cost"]
    assert cost["timed_epochs"] == 2 and sum(row["train_steps"] for row in result["history"]) == 6
    assert cost["seconds_per_step"] > 0 and cost["positions_per_second"] > 0 and cost["peak_memory_mb"] is not None
    lines = [record.getMessage() for record in caplog.records if record.name == "pnlp_bench.train"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"] and all("ETA" in line for line in lines)


class Crash(Exception):
    pass


def test_pretraining_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    import pnlp_bench.bigs.pretrain as pretraining

    blocks = {"train": random_batch(48, 32, seed=1).int(), "eval": random_batch(8, 32, seed=2).int()}
    config = BiGSTrainerConfig(
        max_steps=6, batch_size=8, lr=1e-3, warmup_steps=1, schedule="cosine", checkpoint_every=3, eval_every=3, resident_data="true"
    )
    (tmp_path / "straight").mkdir()
    # with dropout: the resumed run draws the same units only if the checkpoint gave back the global RNG
    straight = pretrain(tiny_mlm(dropout=0.1), blocks, VOCAB, config, tmp_path / "straight", 0, {}, quiet=True)

    # the same run killed during step 4, after its step-3 checkpoint: 3 training masks + 1 dev mask, then a crash
    calls = {"count": 0}
    real_mask_tokens = pretraining.mask_tokens

    def crashing(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 5:
            raise Crash
        return real_mask_tokens(*args, **kwargs)

    (tmp_path / "resumed").mkdir()
    monkeypatch.setattr(pretraining, "mask_tokens", crashing)
    with pytest.raises(Crash):
        pretrain(tiny_mlm(dropout=0.1), blocks, VOCAB, config, tmp_path / "resumed", 0, {}, quiet=True)
    monkeypatch.setattr(pretraining, "mask_tokens", real_mask_tokens)
    torch.manual_seed(7)  # the relaunch's global RNG starts elsewhere; the checkpoint's must win
    resumed = pretrain(tiny_mlm(dropout=0.1, initializer_range=0.5), blocks, VOCAB, config, tmp_path / "resumed", 0, {}, quiet=True)

    assert resumed["resumed_from_step"] == 3 and straight["resumed_from_step"] is None
    for key in ("step", "train_loss", "eval_mlm_loss", "eval_mlm_accuracy"):
        assert [row[key] for row in resumed["history"]] == pytest.approx([row[key] for row in straight["history"]])
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["finished"] is True
    # the step-3 row written before the crash stays, once; the crashed run's later rows never reached last.pt
    assert read_history(tmp_path / "resumed" / "history.jsonl") == resumed["history"]
    assert [row["step"] for row in resumed["history"]] == [3, 6]
    # another config's last.pt in the folder is not taken up: that run starts afresh
    other = pretrain(tiny_mlm(), blocks, VOCAB, config, tmp_path / "resumed", 0, {}, quiet=True, identity={"config_hash": "other"})
    assert other["resumed_from_step"] is None


@pytest.mark.shared
def test_long_input_path_at_4096_tokens_on_qmsum(shared_data, tmp_path):
    from pnlp_bench.commands.run import run

    cfg = compose_config(
        [
            "model=bigs_tiny", "data=qmsum", "trainer=finetune_smoke", "trainer.max_steps=1", "trainer.batch_size=1",
            "data.train_limit=1", "data.eval_limit=2", "backbone.hidden_size=32", "backbone.depth.gated.ssm=1", "quiet=true",
            f"output_root={tmp_path}",  # the results store too, not the checkout's outputs/
        ]
    )
    record = run(cfg, tmp_path)
    assert record["bigs_config"]["max_position_embeddings"] == 4096 and record["task"] == "multiple_choice"
    assert record["data_report"]["truncated"] == {"train": 1, "eval": 2}  # meetings are ~9,000 words long
    assert record["metrics"]["eval"]["avg"]["examples"] == 2 and record["steps"] == 1


def test_init_from_a_released_checkpoint_in_the_authors_format(tmp_path):
    from test_bigs import write_their_checkpoint

    theirs = tiny_mlm(max_position_embeddings=16)
    write_their_checkpoint(tmp_path, theirs, theirs.config, pooler_type="mean")
    backbone = BiGSBackboneConfig(dropout=0.0, pooling="non_padding_mean")
    loaded, report = initialise(f"hf:{tmp_path}", backbone, "regression", 0, max_length=24, data_name="stsb")
    assert loaded.num_labels == 1 and loaded.config.pooling == "mean"  # the checkpoint's own pooling
    assert loaded.config.max_position_embeddings == 24 and report["positions"] == "16 -> 24 (tiled)"
    words = "embeddings.word_embeddings.weight"
    assert torch.equal(loaded.backbone.state_dict()[words], theirs.backbone.state_dict()[words])
    positions = loaded.backbone.embeddings.position_embeddings.weight
    assert torch.equal(positions[16:], theirs.backbone.embeddings.position_embeddings.weight[:8])
    with pytest.raises(ConfigError, match="init=hf:.*nowhere"):
        initialise(f"hf:{tmp_path / 'nowhere'}", backbone, "regression", 0, max_length=24, data_name="stsb")


def test_init_run_names_the_pretraining_by_identity_not_by_the_newest_folder(tmp_path):
    import json
    from dataclasses import asdict

    from pnlp_bench.core import store

    def fake_pretraining_run(name: str, config_hash: str, seed: int) -> BiGSForMaskedLM:
        torch.manual_seed(seed)
        model = BiGSForMaskedLM(tiny_mlm().config)
        folder = tmp_path / "runs" / "wikitext2" / name
        folder.mkdir(parents=True)
        torch.save({"model": model.state_dict(), "bigs_config": asdict(model.config), "task": "mlm"}, folder / "best.pt")
        record = {"status": "finished", "task": "mlm", "bigs_config": asdict(model.config), "config_hash": config_hash,
                  "code_version": store.code_version(), "run_dir": str(folder)}
        (folder / "metrics.json").write_text(json.dumps(record))
        store.append(tmp_path, record)
        return model

    planned = fake_pretraining_run("bigs_tiny-planned", "a" * 16, seed=1)
    fake_pretraining_run("bigs_tiny-newer", "b" * 16, seed=2)  # same architecture, started later by hand
    backbone = tiny_backbone(num_layers=2, intermediate_size=64, num_heads=2)
    loaded, report = initialise(f"run:{'a' * 16}", backbone, "classification", 2, 32, "sst2", output_root=tmp_path)
    assert report["source"] == f"run:{'a' * 16} -> {tmp_path / 'runs' / 'wikitext2' / 'bigs_tiny-planned'}"
    words = "embeddings.word_embeddings.weight"
    assert torch.equal(loaded.backbone.state_dict()[words], planned.backbone.state_dict()[words])
    # a pretraining that is not there: one line saying which and how to produce it
    with pytest.raises(ConfigError, match=f"init=run:{'c' * 16}: no finished run with config hash {'c' * 16} .*run that pretraining first") as error:
        initialise(f"run:{'c' * 16}", backbone, "classification", 2, 32, "sst2", output_root=tmp_path)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="init=pretrained:wikitext2 is gone.*init=run:<config hash>"):
        initialise("pretrained:wikitext2", backbone, "classification", 2, 32, "sst2", output_root=tmp_path)


def test_continued_pretraining_at_a_longer_length_keeps_the_mlm_head(tmp_path):
    model = tiny_mlm(max_position_embeddings=16)
    torch.save({"model": model.state_dict(), "bigs_config": vars(model.config), "task": "mlm", "data": "wikitext2"}, tmp_path / "last.pt")
    loaded, report = initialise(str(tmp_path / "last.pt"), BiGSBackboneConfig(), "mlm", 0, max_length=64, data_name="wikitext2")
    assert report["fresh"] == [] and report["positions"] == "16 -> 64 (tiled)"
    assert torch.equal(loaded.mlm_head.dense.weight, model.mlm_head.dense.weight)
    assert torch.equal(loaded.mlm_head.bias, model.mlm_head.bias)


def test_snapshots_keep_the_weights_and_dev_scores_at_their_steps_and_init_from_one(tmp_path):
    """trainer.snapshot_steps: one pretraining, several budgets; init=run:<hash>@<step> starts from one."""
    import json

    from pnlp_bench.core import store

    blocks = {"train": random_batch(48, 32, seed=1).int(), "eval": random_batch(8, 32, seed=2).int()}
    config = BiGSTrainerConfig(max_steps=5, batch_size=8, lr=1e-3, warmup_steps=1, schedule="cosine", snapshot_steps=[2, 4])
    folder = tmp_path / "runs" / "wikitext2" / "bigs_tiny-snap"
    folder.mkdir(parents=True)
    model = tiny_mlm()
    extra = {"bigs_config": vars(model.config), "task": "mlm", "data": "wikitext2"}
    result = pretrain(model, blocks, VOCAB, config, folder, 0, extra, quiet=True)

    assert [snap["step"] for snap in result["snapshots"]] == [2, 4]
    assert [snap["tokens_seen"] for snap in result["snapshots"]] == [2 * 8 * 32, 4 * 8 * 32]
    # each snapshot is scored where the history scores it, and the final weights differ from step 2's
    by_step = {row["step"]: row for row in result["history"]}
    for snap in result["snapshots"]:
        assert snap["mlm_loss"] == pytest.approx(by_step[snap["step"]]["eval_mlm_loss"])
    at_two = torch.load(folder / "snapshots" / "step_2.pt", weights_only=True)
    assert at_two["step"] == 2 and at_two["eval"]["mlm_loss"] == pytest.approx(result["snapshots"][0]["mlm_loss"])
    words = "backbone.embeddings.word_embeddings.weight"
    assert not torch.equal(at_two["model"][words], model.state_dict()[words])

    record = {"status": "finished", "task": "mlm", "config_hash": "d" * 16, "code_version": store.code_version(), "run_dir": str(folder)}
    (folder / "metrics.json").write_text(json.dumps(record))
    store.append(tmp_path, record)
    backbone = tiny_backbone(num_layers=2, intermediate_size=64, num_heads=2)
    loaded, report = initialise(f"run:{'d' * 16}@2", backbone, "classification", 2, 32, "sst2", output_root=tmp_path)
    assert report["file"].endswith("snapshots/step_2.pt")
    assert torch.equal(loaded.backbone.state_dict()["embeddings.word_embeddings.weight"], at_two["model"][words])
    with pytest.raises(ConfigError, match=r"no snapshot at step '3'; it kept steps 2, 4"):
        initialise(f"run:{'d' * 16}@3", backbone, "classification", 2, 32, "sst2", output_root=tmp_path)
    with pytest.raises(ConfigError, match="snapshot_steps: 9 is past trainer.max_steps=5"):
        BiGSTrainerConfig(max_steps=5, snapshot_steps=[9]).validate("trainer")


@pytest.mark.shared
def test_the_unigram_baseline_in_the_table_file_is_recomputed_from_wikitext2(shared_data, tmp_path, monkeypatch):
    """experiments/bigs_table1.yaml's baseline is what baselines.py computes on the data, not a typed number."""
    from pathlib import Path

    import yaml

    from pnlp_bench.bigs.baselines import context_free_baseline, unigram_baseline
    from pnlp_bench.bigs.data.loaders import load_text_data
    from pnlp_bench.bigs.data.text_tasks import TextDataConfig
    from pnlp_bench.bigs.pretrain import DEV_MASK_SEED, build_blocks
    from pnlp_bench.core.paths import BERT_UNCASED_VOCAB

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / "bigs_table1.yaml").read_text())
    stated = spec["pretrain"]["baseline"]
    task = load_text_data(TextDataConfig(name="wikitext2", max_length=128))
    blocks = {split: build_blocks(docs, 128, VOCAB, str(BERT_UNCASED_VOCAB))[0] for split, docs in task.splits.items()}
    found = unigram_baseline(blocks["train"], blocks["eval"], VOCAB, 0.15, 20, DEV_MASK_SEED, stated["eval_batch_size"])
    assert found["mlm_loss"] == pytest.approx(stated["mlm_loss"], abs=5e-4)
    assert found["perplexity"] == pytest.approx(stated["perplexity"], abs=0.5)
    context_free = context_free_baseline(blocks["train"], blocks["eval"], VOCAB, 0.15, 20, DEV_MASK_SEED, stated["eval_batch_size"])
    assert context_free["mlm_loss"] == pytest.approx(stated["context_free"]["mlm_loss"], abs=5e-4)
    assert context_free["perplexity"] == pytest.approx(stated["context_free"]["perplexity"], abs=0.5)
    assert context_free["masked_tokens"] == found["masked_tokens"] and context_free["mlm_loss"] < found["mlm_loss"]


def test_the_context_free_baseline_trusts_the_shown_token_only_as_often_as_the_masking_keeps_it():
    from pnlp_bench.bigs.baselines import context_free_baseline, unigram_baseline

    generator = torch.Generator().manual_seed(0)
    train = torch.randint(VOCAB.first_ordinary, VOCAB.first_ordinary + 50, (40, 16), generator=generator)
    dev = torch.randint(VOCAB.first_ordinary, VOCAB.first_ordinary + 50, (12, 16), generator=generator)
    arguments = (train, dev, VOCAB, 0.3, None, 0, 4)
    unigram = unigram_baseline(*arguments)
    # no position keeps its own token: the shown token is never the target's, the model is the unigram one
    never = context_free_baseline(*arguments, mask_fraction=0.8, random_fraction=0.2)
    assert never["mlm_loss"] == pytest.approx(unigram["mlm_loss"], abs=1e-3)
    assert never["masked_tokens"] == unigram["masked_tokens"] > 0
    # BERT's 80/10/10: a tenth of the targets are shown, so the loss drops well below the unigram's
    bert = context_free_baseline(*arguments)
    assert bert["mlm_loss"] < unigram["mlm_loss"] - 0.2
