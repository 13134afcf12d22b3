"""The context probes of pnlp_bench/bigs/diagnostics.py and `bench probe`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from pnlp_bench.bigs.diagnostics import adjacent_attention, context_use, keep_window, shuffle_context
from pnlp_bench.bigs.model import BiGSConfig, BiGSForMaskedLM, SelfAttention
from pnlp_bench.bigs.tokenization import Vocabulary
from test_cli import bench

VOCAB = Vocabulary(size=60, pad=0, unk=1, cls=2, sep=3, mask=4, first_ordinary=5)


def tiny(arch: str, routing: str) -> BiGSForMaskedLM:
    torch.manual_seed(0)
    config = BiGSConfig(vocab_size=60, hidden_size=32, num_layers=2, intermediate_size=64, state_size=8,
                        max_position_embeddings=16, num_heads=4, arch=arch, routing=routing)
    model = BiGSForMaskedLM(config).eval()
    with torch.no_grad():  # weights large enough that the output depends visibly on the input
        for name, parameter in model.named_parameters():
            if parameter.dim() == 2 and "ssm" not in name.lower():
                parameter.normal_(0.0, 0.3)
    return model


def blocks(count: int = 6, length: int = 16) -> torch.Tensor:
    ids = torch.randint(VOCAB.first_ordinary, VOCAB.size, (count, length), generator=torch.Generator().manual_seed(3))
    ids[:, 0], ids[:, -1] = VOCAB.cls, VOCAB.sep
    return ids


def test_shuffling_moves_only_the_context_and_keeps_its_bag_of_words():
    ids = blocks()
    context = torch.ones_like(ids, dtype=torch.bool)
    context[:, 0] = context[:, -1] = False
    context[:, 5] = False  # a target
    shuffled = shuffle_context(ids, context, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled[~context], ids[~context])
    for row in range(ids.shape[0]):
        assert sorted(shuffled[row, context[row]].tolist()) == sorted(ids[row, context[row]].tolist())
    assert not torch.equal(shuffled, ids)


def test_the_window_keeps_the_neighbours_of_targets_and_masks_the_rest():
    ids = blocks(count=1)
    targets = torch.zeros_like(ids, dtype=torch.bool)
    targets[0, 7] = True
    context = ~targets
    context[:, 0] = context[:, -1] = False
    kept = keep_window(ids, context, targets, window=2, mask_id=VOCAB.mask)
    assert torch.equal(kept[0, 5:10], ids[0, 5:10])  # positions 5, 6, (7 the target), 8, 9
    assert (kept[0, 1:5] == VOCAB.mask).all() and (kept[0, 10:15] == VOCAB.mask).all()
    assert kept[0, 0] == VOCAB.cls and kept[0, -1] == VOCAB.sep


def test_order_blind_attention_scores_the_same_shuffled_and_an_ssm_does_not():
    arguments = dict(vocab=VOCAB, probability=0.3, max_predictions=None, mask_seed=0, batch_size=4)
    attention = tiny("stack", "attention")
    with torch.no_grad():  # without positions, softmax attention is blind to order
        attention.backbone.embeddings.position_embeddings.weight.zero_()
    blind = context_use(attention, blocks(), **arguments)
    assert blind["context_shuffled"] == pytest.approx(blind["as_is"], abs=1e-5)
    assert abs(blind["window"] - blind["as_is"]) > 1e-3  # dropping words does change its input
    ssm = context_use(tiny("gated", "ssm"), blocks(), **arguments)
    assert abs(ssm["context_shuffled"] - ssm["as_is"]) > 1e-3
    assert ssm["masked_tokens"] == blind["masked_tokens"] > 0


def test_adjacent_attention_is_one_when_attention_is_uniform():
    model = tiny("gated", "attention")
    assert adjacent_attention(tiny("gated", "ssm"), blocks()) is None
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, SelfAttention):
                module.qkv_proj.weight[: 2 * 32].zero_()  # queries and keys 0: every weight 1/L
                module.qkv_proj.bias[: 2 * 32].zero_()
    assert adjacent_attention(model, blocks()) == pytest.approx(1.0, abs=1e-5)
    assert adjacent_attention(tiny("stack", "attention"), blocks()) != pytest.approx(1.0, abs=1e-3)


def test_adjacent_attention_counts_the_relative_bias_and_matches_what_forward_applies():
    torch.manual_seed(0)
    config = BiGSConfig(vocab_size=60, hidden_size=32, num_layers=2, intermediate_size=64, max_position_embeddings=16,
                        num_heads=2, arch="stack", routing="attention", relative_attention_buckets=16,
                        relative_attention_init_slope=1.0, dropout=0.0)
    model = BiGSForMaskedLM(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, SelfAttention):
                module.qkv_proj.weight[: 2 * 32].zero_()
                module.qkv_proj.bias[: 2 * 32].zero_()
    # query and key at zero: the weights are the bias's softmax, which puts the neighbours far above uniform
    assert adjacent_attention(model, blocks()) > 2.0
    attention = next(m for m in model.modules() if isinstance(m, SelfAttention))
    x = torch.randn(2, 16, 32)
    _, _, value = attention._heads(x)
    expected = (attention.attention_weights(x) @ value).transpose(1, 2).reshape(2, 16, 32)
    assert torch.allclose(attention(x), attention.out_proj(expected), atol=1e-5)


def test_probe_errors_name_the_file(tmp_path):
    missing = bench("probe", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere/config.yaml: not found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad_step = bench("probe", f"{tmp_path}@last", cwd=tmp_path)
    assert bad_step.returncode == 2 and "must be a step number" in bad_step.stderr


@pytest.mark.shared
def test_probe_of_a_pretraining_reproduces_its_recorded_dev_loss(shared_data, tmp_path):
    pretrained = bench(
        "pretrain", "trainer=mlm_smoke", "trainer.max_steps=4", "trainer.eval_every=2", "trainer.snapshot_steps=[2]",
        "data.train_limit=200", "data.eval_limit=30", "data.max_length=32", "trainer.num_threads=1", "quiet=true", cwd=tmp_path,
    )
    assert pretrained.returncode == 0, pretrained.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "runs" / "wikitext2").glob("bigs_tiny-*")
    probed = bench("probe", str(run_dir), f"{run_dir}@2", "--output", str(tmp_path / "context"), cwd=tmp_path)
    assert probed.returncode == 0, probed.stderr[-2000:]
    result = json.loads((tmp_path / "context.json").read_text())
    record = json.loads((run_dir / "metrics.json").read_text())
    final, early = result["rows"]
    # the command refuses a mismatch; check the values it kept too
    assert final["as_is"] == pytest.approx(record["metrics"]["eval"]["avg"]["mlm_loss"], abs=2e-3)
    assert early["snapshot"] and early["step"] == 2 and early["tokens_seen"] == record["snapshots"][0]["tokens_seen"]
    assert early["as_is"] == pytest.approx(record["snapshots"][0]["mlm_loss"], abs=2e-3)
    assert final["adjacent_attention"] is None  # bigs_tiny is GATED+SSM
    assert "| GATED+SSM (BiGS)" in (tmp_path / "context.md").read_text()


def test_probe_labels_name_the_relative_bias_and_its_start():
    from pnlp_bench.commands.mlm_probe import label

    def named(**keys):
        return label(BiGSConfig(vocab_size=60, hidden_size=32, num_heads=2, **keys))

    assert named(arch="stack", routing="attention") == "STACK+attention (BERT)"
    assert named(arch="gated", routing="ssm") == "GATED+SSM (BiGS)"
    assert named(arch="stack", routing="attention", relative_attention_buckets=32,
                 relative_attention_init_slope=0.5) == "STACK+attention, relative bias (local start)"
    assert named(arch="gated", routing="attention", relative_attention_buckets=32) == "GATED+attention, relative bias (zero start)"
