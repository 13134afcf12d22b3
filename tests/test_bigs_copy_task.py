"""The copy-task check of pnlp_bench/bigs/copy_task.py and `bench copy-task`."""

from __future__ import annotations

import json

import pytest
import torch

from pnlp_bench.bigs.config import BiGSTrainerConfig
from pnlp_bench.bigs.copy_task import copy_task_curve, pair_blocks, partner, reference_levels
from pnlp_bench.bigs.masking import IGNORE_INDEX
from pnlp_bench.bigs.model import BiGSConfig, BiGSForMaskedLM
from pnlp_bench.bigs.tokenization import Vocabulary
from test_cli import bench

VOCAB = Vocabulary(size=60, pad=0, unk=1, cls=2, sep=3, mask=4, first_ordinary=5)


def test_blocks_are_pairs_and_partner_swaps_them():
    ids = pair_blocks(3, 8, torch.Generator().manual_seed(0), tokens=(10, 50))
    assert ids.shape == (3, 8)
    assert torch.equal(ids[:, 0::2], ids[:, 1::2])
    assert ((ids >= 10) & (ids < 50)).all()
    numbered = torch.arange(6)[None]
    assert partner(numbered).tolist() == [[1, 0, 3, 2, 5, 4]]
    with pytest.raises(ValueError, match="even block length"):
        pair_blocks(1, 7, torch.Generator())


def test_reference_levels_count_shown_targets_and_visible_partners():
    ids = torch.tensor([[7, 7, 9, 9]])
    labels = torch.tensor([[7, IGNORE_INDEX, 9, 9]])  # targets at 0, 2 and 3
    inputs = torch.tensor([[4, 7, 9, 4]])  # 0: [MASK], partner visible; 2: shows itself, partner masked; 3: masked, partner shows
    levels = reference_levels(inputs, ids, labels)
    assert levels["shown_level"] == pytest.approx(1 / 3)
    assert levels["ceiling"] == pytest.approx(2 / 3)


def test_an_ssm_encoder_learns_to_copy_its_neighbour_and_stops_once_solved():
    torch.manual_seed(0)
    config = BiGSConfig(vocab_size=60, hidden_size=32, num_layers=2, intermediate_size=64, state_size=8,
                        max_position_embeddings=16, arch="stack", routing="ssm")
    trainer = BiGSTrainerConfig(batch_size=32, lr=3e-3, warmup_steps=5, mlm_probability=0.3, precision="fp32")
    result = copy_task_curve(BiGSForMaskedLM(config), VOCAB, trainer, steps=600, eval_every=20, seed=0, length=16,
                             stop_at=0.8, tokens=(5, 25))
    first, last = result["curve"][0], result["curve"][-1]
    assert first["step"] == 0 and first["accuracy"] < 0.5 * result["ceiling"]
    assert last["accuracy"] >= 0.8 * result["ceiling"] and result["stopped_early"]
    assert result["half_ceiling_step"] is not None and result["half_ceiling_step"] <= last["step"]
    assert result["steps_run"] < 600 and result["shown_level"] < 0.5 * result["ceiling"]


def test_bench_copy_task_writes_its_report(tmp_path):
    output = tmp_path / "copy"
    done = bench("copy-task", "--variants", "stack+attention", "--steps", "2", "--eval-every", "1",
                 "--batch-size", "2", "--output", str(output), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(output.with_name("copy.json").read_text())
    row = result["rows"][0]
    assert row["label"] == "STACK+attention (BERT)" and row["num_layers"] == 4
    assert [point["step"] for point in row["curve"]] == [0, 1, 2]
    assert "| STACK+attention (BERT) | 4 |" in output.with_name("copy.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--variants", "stack+lstm"], "--variants: 'stack+lstm' is not one of"),
    (["--length", "9"], "--length must be even"),
    (["--steps", "0"], "--steps must be >= 1"),
])
def test_bench_copy_task_refuses_bad_options_in_one_line(args, message, tmp_path):
    done = bench("copy-task", *args, "--output", str(tmp_path / "x"), cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_query_key_init_sets_only_the_query_and_key_rows_of_attention():
    from pnlp_bench.bigs.model import SelfAttention

    def attention_weights(qk_std):
        torch.manual_seed(0)
        config = BiGSConfig(vocab_size=60, hidden_size=64, num_layers=2, intermediate_size=128, max_position_embeddings=16,
                            arch="stack", routing="attention", num_heads=2, query_key_initializer_range=qk_std)
        model = BiGSForMaskedLM(config)
        return [m.qkv_proj.weight.detach() for m in model.modules() if isinstance(m, SelfAttention)]

    for weight in attention_weights(0.2):
        assert weight[:128].std().item() == pytest.approx(0.2, rel=0.1)  # queries and keys
        assert weight[128:].std().item() == pytest.approx(0.02, rel=0.1)  # values keep BERT's init
    for weight in attention_weights(None):
        assert weight.std().item() == pytest.approx(0.02, rel=0.1)
    with pytest.raises(ValueError, match="query_key_initializer_range must be > 0"):
        BiGSConfig(vocab_size=60, routing="attention", query_key_initializer_range=0.0)


@pytest.mark.parametrize("key, value", [
    ("backbone.query_key_initializer_range", "0.049"),
    ("backbone.relative_attention_buckets", "32"),
    ("backbone.relative_attention_init_slope", "0.5"),
])
def test_the_attention_init_keys_leave_every_earlier_identity_alone(key, value):
    from pnlp_bench.core.compose import compose, config_identity

    base = ["task=mlm", "model=bigs_mini", "trainer=mlm_cpu", "arch=stack", "routing=attention"]
    if key.endswith("init_slope"):
        base.append("backbone.relative_attention_buckets=32")
    plain = config_identity(compose(base))
    assert config_identity(compose([*base, f"{key}=null"])) == plain
    assert config_identity(compose([*base, f"{key}={value}"])) != plain


def test_relative_position_buckets_follow_t5s_bidirectional_scheme():
    from pnlp_bench.bigs.model import relative_position_buckets

    buckets = relative_position_buckets(128, 32)
    row = buckets[64]
    # offsets -7..0 to the left get exact buckets 7..0; offsets +1..+7 to the right get 17..23
    assert row[57:65].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    assert row[65:72].tolist() == list(range(17, 24))
    # far offsets share logarithmic buckets, capped at the last of each direction
    assert buckets[0, 127].item() == 31 and buckets[127, 0].item() == 15
    assert int(buckets.max()) == 31 and int(buckets.min()) == 0
    # the same offset gets the same bucket wherever the query is
    assert torch.equal(torch.diagonal(buckets, offset=3), torch.full((125,), 19))


def test_attention_reuses_one_bucket_index_per_length():
    from pnlp_bench.bigs.model import SelfAttention, _bucket_index, relative_position_buckets

    _bucket_index.cache_clear()
    attention = SelfAttention(16, num_heads=2, dropout=0.0, output_projection=True, relative_buckets=32,
                              relative_init_slope=0.5)
    x = torch.randn(2, 12, 16)
    first = attention(x)
    assert torch.equal(attention(x), first)  # the cached index changes nothing the layer computes
    assert _bucket_index.cache_info().hits >= 1 and _bucket_index.cache_info().misses == 1
    assert torch.equal(_bucket_index(12, 32, "cpu"), relative_position_buckets(12, 32))
    attention(torch.randn(2, 7, 16))  # another length, its own index
    assert _bucket_index.cache_info().misses == 2


def test_relative_attention_bias_starts_as_bert_learns_and_respects_padding():
    from pnlp_bench.bigs.model import SelfAttention

    def model(buckets, arch="stack"):
        torch.manual_seed(0)
        config = BiGSConfig(vocab_size=60, hidden_size=32, num_layers=2, intermediate_size=64, max_position_embeddings=16,
                            arch=arch, routing="attention", num_heads=2, relative_attention_buckets=buckets,
                            mask_padding=True, dropout=0.0)
        return BiGSForMaskedLM(config)

    ids = torch.randint(5, 60, (3, 16))
    mask = torch.ones(3, 16, dtype=torch.long)
    mask[0, 10:] = 0
    for arch in ("stack", "gated"):
        plain, relative = model(None, arch), model(32, arch)
        # zero-initialised bias: the same function as BERT's attention at the same weights
        relative.load_state_dict(plain.state_dict(), strict=False)
        assert torch.allclose(plain(ids, mask).logits, relative(ids, mask).logits, atol=1e-6)
        biases = [m.relative_position_bias for m in relative.modules() if isinstance(m, SelfAttention)]
        assert biases and all(b.shape == (2, 32) for b in biases)
        relative(ids, mask).logits.sum().backward()
        assert all(b.grad is not None and b.grad.abs().sum() > 0 for b in biases)
        # what sits behind a pad never reaches the unpadded positions
        changed = ids.clone()
        changed[0, 12] = 7
        with torch.no_grad():
            assert torch.allclose(relative(ids, mask).logits[0, :10], relative(changed, mask).logits[0, :10], atol=1e-5)
    with pytest.raises(ValueError, match="relative_attention_buckets must be >= 4"):
        BiGSConfig(vocab_size=60, routing="attention", relative_attention_buckets=2)


def test_relative_init_slope_starts_attention_local_and_halves_per_head():
    from pnlp_bench.bigs.model import SelfAttention, bucket_distances

    distances = bucket_distances(32)
    assert distances[:9].tolist() == list(range(9)) and distances[17:25].tolist() == list(range(1, 9))
    assert distances[15].item() == distances[31].item() > 64  # the farthest buckets of each direction
    attention = SelfAttention(64, 2, 0.0, True, relative_buckets=32, relative_init_slope=0.5)
    bias = attention.relative_position_bias.detach()
    assert torch.allclose(bias[0], -0.5 * distances) and torch.allclose(bias[1], -0.25 * distances)
    # at zero weights every query sees the same keys, so the weights are the bias's softmax: nearest first
    torch.nn.init.zeros_(attention.qkv_proj.weight)
    logits = attention._logit_bias(16, None, torch.float32)[0, 0, 8]
    assert int(logits.argmax()) == 8 and logits[7] == logits[9] > logits[6]
    with pytest.raises(ValueError, match="relative_attention_init_slope needs relative_attention_buckets"):
        BiGSConfig(vocab_size=60, routing="attention", relative_attention_init_slope=0.5)
    with pytest.raises(ValueError, match="relative_attention_init_slope needs"):
        BiGSConfig(vocab_size=60, routing="attention", relative_attention_buckets=32, relative_attention_init_slope=-1.0)
