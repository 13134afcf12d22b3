"""Tests of the BiGS model (pnlp_bench.bigs.model) and of the checkpoint converter (bigs_convert)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pnlp_bench.bigs import convert as bigs_convert
from pnlp_bench.bigs.model import (
    SSM,
    BidirectionalSSM,
    BiGSConfig,
    BiGSForMaskedLM,
    BiGSForMultipleChoice,
    BiGSForSequenceClassification,
    GatedBlock,
    SelfAttention,
    hippo_legs_diagonal,
    mean_pool,
)
from pnlp_bench.bigs.convert import convert_state_dict, export_state_dict, load_pretrained

RELEASED_PARAMETERS = 346_314_134
VARIANTS = [(arch, routing) for arch in ("gated", "stack") for routing in ("ssm", "attention")]


def tiny_config(**overrides: object) -> BiGSConfig:
    config = BiGSConfig(
        vocab_size=60,
        hidden_size=32,
        num_layers=2,
        intermediate_size=64,
        state_size=8,
        max_position_embeddings=16,
        num_heads=4,
    )
    return replace(config, **overrides)


def randomize_(module: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter random (biases and LayerNorms too), so a swapped or dropped tensor shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.5)


def zoh_from_parameters(ssm: SSM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Abar, Bbar, C, D straight from the raw parameters, following bigs.md, independent of SSM's code."""
    with torch.no_grad():
        a = torch.complex(ssm.A_re.double().clamp(max=-1e-4), ssm.A_im.double())
        step = ssm.log_dt.double().exp()
        a_bar = torch.exp(step * a)
        b_bar = (a_bar - 1) / a
        c = torch.complex(ssm.C_re.double(), ssm.C_im.double())
        return a_bar, b_bar, c, ssm.D.double()


def causal_loop(ssm: SSM, u: torch.Tensor) -> torch.Tensor:
    a_bar, b_bar, c, d = zoh_from_parameters(ssm)
    state = torch.zeros(u.shape[0], u.shape[2], a_bar.shape[0], dtype=torch.complex128)
    out = []
    for step in range(u.shape[1]):
        state = a_bar * state + b_bar * u[:, step, :, None]
        out.append((state * c).sum(-1).real + d * u[:, step])
    return torch.stack(out, dim=1)


def anticausal_loop(ssm: SSM, u: torch.Tensor) -> torch.Tensor:
    """The backward direction run in reverse time: x_l = Abar x_{l+1} + Bbar u_l, no flipping."""
    a_bar, b_bar, c, d = zoh_from_parameters(ssm)
    state = torch.zeros(u.shape[0], u.shape[2], a_bar.shape[0], dtype=torch.complex128)
    out = [torch.empty(0)] * u.shape[1]
    for step in reversed(range(u.shape[1])):
        state = a_bar * state + b_bar * u[:, step, :, None]
        out[step] = (state * c).sum(-1).real + d * u[:, step]
    return torch.stack(out, dim=1)


# ----------------------------------------------------------------------------------------------------------
# The SSM
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["legs", "lin"])
def test_fft_convolution_equals_recurrence(init: str) -> None:
    torch.manual_seed(0)
    ssm = SSM(state_size=8, init=init).double()
    with torch.no_grad():
        ssm.log_dt.fill_(math.log(0.3))  # a step where the kernel is far from both 0 and a delta
        ssm.D.fill_(0.7)
    u = torch.randn(3, 40, 5, dtype=torch.float64)
    fft_path = ssm(u)
    assert fft_path.abs().max() > 0.1
    torch.testing.assert_close(fft_path, ssm.recurrence(u), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fft_path, causal_loop(ssm, u), rtol=1e-10, atol=1e-10)


def test_bidirectional_ssm_equals_causal_plus_anticausal_recurrence() -> None:
    torch.manual_seed(1)
    routing = BidirectionalSSM(tiny_config()).double()
    x = torch.randn(2, 24, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = routing.out_proj(causal_loop(routing.forward_ssm, x) + anticausal_loop(routing.backward_ssm, x))
    torch.testing.assert_close(routing(x), expected, rtol=1e-9, atol=1e-10)


def test_gated_block_matches_the_recipe_with_reverse_time_backward_ssm() -> None:
    torch.manual_seed(2)
    block = GatedBlock(tiny_config()).double()
    randomize_(block, seed=2)
    with torch.no_grad():
        for ssm in (block.forward_routing, block.backward_routing):
            ssm.log_dt.fill_(math.log(0.2))
            ssm.A_re.fill_(-0.5)
    x = torch.randn(2, 16, 32, dtype=torch.float64)

    def gelu(t: torch.Tensor) -> torch.Tensor:
        return F.gelu(t, approximate="tanh")

    with torch.no_grad():
        h = block.norm(x)
        gate = gelu(block.gate_proj(h))
        u_forward = block.forward_out_proj(causal_loop(block.forward_routing, gelu(block.forward_in_proj(h))))
        # GELU(W_b flip(h)) then flip back equals running the backward SSM in reverse time on GELU(W_b h)
        u_backward = block.backward_out_proj(anticausal_loop(block.backward_routing, gelu(block.backward_in_proj(h))))
        expected = x + block.out_proj(gelu(block.mix_proj(u_forward * u_backward)) * gate)
    torch.testing.assert_close(block(x), expected, rtol=1e-9, atol=1e-9)


def test_kernel_shape_dtype_and_prefix_consistency() -> None:
    torch.manual_seed(3)
    ssm = SSM(state_size=8)
    short, long = ssm.kernel(16), ssm.kernel(64)
    assert short.shape == (16,) and long.shape == (64,)
    assert short.dtype == torch.float32
    torch.testing.assert_close(long[:16], short)
    a_bar, b_bar, c = ssm.discretize()
    torch.testing.assert_close(short[0], (c * b_bar).sum().real)
    torch.testing.assert_close(short[5], (c * b_bar * a_bar**5).sum().real, rtol=1e-5, atol=1e-6)
    # bf16 weights and activations still get an fp32 kernel and FFT, and bf16 back out
    half = SSM(state_size=8).to(torch.bfloat16)
    assert half.kernel(16).dtype == torch.float32
    assert half(torch.randn(2, 16, 4, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_ssm_parameters_are_shared_across_channels() -> None:
    ssm = SSM(state_size=64)
    shapes = {name: tuple(p.shape) for name, p in ssm.named_parameters()}
    assert shapes == {"A_re": (64,), "A_im": (64,), "C_re": (64,), "C_im": (64,), "D": (1,), "log_dt": (1,)}
    assert sum(p.numel() for p in ssm.parameters()) == 258


def test_hippo_legs_diagonal_is_the_positive_half_of_the_normal_legs_spectrum() -> None:
    state = 8
    real, imag = hippo_legs_diagonal(state)
    size = 2 * state
    n = np.arange(size)
    # HiPPO-LegS written entry by entry, independently of the implementation's matrix algebra
    legs = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            if row > col:
                legs[row, col] = -math.sqrt(2 * row + 1) * math.sqrt(2 * col + 1)
            elif row == col:
                legs[row, col] = -(row + 1)
    normal = legs + 0.5 * np.sqrt(np.outer(2 * n + 1, 2 * n + 1))
    eigenvalues = np.linalg.eigvals(normal)
    positive = np.sort(eigenvalues[eigenvalues.imag > 0].imag)
    np.testing.assert_allclose(real, -0.5)
    np.testing.assert_allclose(imag, positive, rtol=1e-10)
    np.testing.assert_allclose(eigenvalues.real, -0.5, atol=1e-9)
    ssm = SSM(state, init="legs")
    torch.testing.assert_close(ssm.A_im, torch.tensor(positive, dtype=torch.float32))
    lin = SSM(state, init="lin")
    torch.testing.assert_close(lin.A_im, math.pi * torch.arange(state, dtype=torch.float32))
    torch.testing.assert_close(lin.A_re, torch.full((state,), -0.5))


# ----------------------------------------------------------------------------------------------------------
# The released configuration
# ----------------------------------------------------------------------------------------------------------


def test_released_configuration_has_exactly_the_published_parameter_count() -> None:
    with torch.device("meta"):
        model = BiGSForMaskedLM(BiGSConfig())
    assert next(model.parameters()).device.type == "meta"
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMETERS
    layer = model.backbone.encoder.layers[0]
    assert sum(p.numel() for p in layer.parameters()) == 13_645_316
    assert len(model.backbone.encoder.layers) == 23


def test_released_configuration_exports_to_the_authors_shapes() -> None:
    with torch.device("meta"):
        model = BiGSForMaskedLM(BiGSConfig())
    theirs = export_state_dict(model.state_dict())
    assert theirs["bigs.encoder.layer.22.fs4.kernel.C"].shape == (64, 2)
    assert theirs["bigs.encoder.layer.0.dv.weight"].shape == (3072, 1024)
    assert theirs["bigs.encoder.layer.0.do.weight"].shape == (1024, 3072)
    assert theirs["cls.predictions.decoder.weight"].shape == (30522, 1024)
    stored_twice = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "bigs.embeddings.position_ids"}
    assert sum(t.numel() for name, t in theirs.items() if name not in stored_twice) == RELEASED_PARAMETERS


# ----------------------------------------------------------------------------------------------------------
# The four architectures and the heads
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "routing"), VARIANTS)
def test_variant_builds_and_trains_a_step(arch: str, routing: str) -> None:
    torch.manual_seed(4)
    model = BiGSForMaskedLM(tiny_config(arch=arch, routing=routing))
    input_ids = torch.randint(0, 60, (3, 16))
    labels = torch.full_like(input_ids, -100)
    labels[:, [2, 9]] = input_ids[:, [2, 9]]
    out = model(input_ids, attention_mask=torch.ones_like(input_ids), labels=labels)
    assert out.logits.shape == (3, 16, 60)
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    encoder_grad = sum(p.grad.abs().sum() for p in model.backbone.encoder.parameters())
    assert encoder_grad > 0
    if routing == "ssm":
        assert any(name.endswith("log_dt") and p.grad.abs().sum() > 0 for name, p in model.named_parameters())


def test_variants_differ_in_structure() -> None:
    counts = {
        (arch, routing): sum(p.numel() for p in BiGSForMaskedLM(tiny_config(arch=arch, routing=routing)).parameters())
        for arch, routing in VARIANTS
    }
    assert len(set(counts.values())) == 4, counts


def test_invalid_config_names_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="gated"):
        BiGSConfig(arch="gatd")  # type: ignore[arg-type]


def test_mlm_loss_counts_only_masked_positions() -> None:
    torch.manual_seed(5)
    model = BiGSForMaskedLM(tiny_config()).eval()
    input_ids = torch.randint(0, 60, (2, 16))
    labels = torch.full_like(input_ids, -100)
    labels[0, 3], labels[1, 7], labels[1, 12] = 5, 17, 42
    out = model(input_ids, labels=labels)
    scored = labels != -100
    expected = F.cross_entropy(out.logits[scored], labels[scored])
    torch.testing.assert_close(out.loss, expected)
    everywhere = F.cross_entropy(out.logits.view(-1, 60), torch.where(scored, labels, input_ids).view(-1))
    assert not torch.isclose(out.loss, everywhere)


def test_mlm_decoder_is_tied_to_the_word_embeddings() -> None:
    model = BiGSForMaskedLM(tiny_config()).eval()
    input_ids = torch.randint(0, 60, (1, 8))
    before = model(input_ids).logits
    with torch.no_grad():
        model.backbone.embeddings.word_embeddings.weight[7].add_(1.0)
    after = model(input_ids).logits
    assert not torch.allclose(before[..., 7], after[..., 7])


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    poisoned = hidden.clone()
    poisoned[0, 3:] = 1e6
    pooled = mean_pool(poisoned, mask, "non_padding_mean")
    torch.testing.assert_close(pooled[0], hidden[0, :3].mean(0))
    torch.testing.assert_close(pooled[1], hidden[1].mean(0))
    torch.testing.assert_close(mean_pool(hidden, mask, "mean"), hidden.mean(1))


@pytest.mark.parametrize(("arch", "routing"), VARIANTS)
def test_masked_model_ignores_pads_end_to_end(arch: str, routing: str) -> None:
    torch.manual_seed(6)
    model = BiGSForSequenceClassification(tiny_config(arch=arch, routing=routing, mask_padding=True), num_labels=3)
    randomize_(model, seed=6)
    model.eval()
    real = torch.randint(1, 60, (1, 9))
    padded = torch.cat([real, torch.zeros(1, 7, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 9, dtype=torch.long), torch.zeros(1, 7, dtype=torch.long)], dim=1)
    alone = model(real, attention_mask=torch.ones_like(real)).logits
    with_pads = model(padded, attention_mask=mask).logits
    torch.testing.assert_close(with_pads, alone, rtol=1e-4, atol=1e-4)


def test_default_gated_ssm_lets_pads_through_like_the_released_model() -> None:
    torch.manual_seed(7)
    model = BiGSForSequenceClassification(tiny_config(), num_labels=2)
    randomize_(model, seed=7)
    model.eval()
    real = torch.randint(1, 60, (1, 9))
    padded = torch.cat([real, torch.zeros(1, 7, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 9, dtype=torch.long), torch.zeros(1, 7, dtype=torch.long)], dim=1)
    alone = model(real).logits
    with_pads = model(padded, attention_mask=mask).logits
    assert not torch.allclose(with_pads, alone, rtol=1e-4, atol=1e-4)


def test_sequence_classification_and_regression_losses() -> None:
    torch.manual_seed(8)
    input_ids = torch.randint(0, 60, (4, 12))
    classifier = BiGSForSequenceClassification(tiny_config(), num_labels=3).eval()
    labels = torch.tensor([0, 2, 1, 2])
    out = classifier(input_ids, labels=labels)
    assert out.logits.shape == (4, 3)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    regressor = BiGSForSequenceClassification(tiny_config(), num_labels=1).eval()
    targets = torch.tensor([0.5, 4.0, 2.5, 1.0])
    out = regressor(input_ids, labels=targets)
    assert out.logits.shape == (4, 1)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), targets))


def test_multiple_choice_scores_each_choice_independently() -> None:
    torch.manual_seed(9)
    model = BiGSForMultipleChoice(tiny_config()).eval()
    input_ids = torch.randint(1, 60, (2, 3, 10))
    mask = torch.ones_like(input_ids)
    mask[:, :, 8:] = 0
    labels = torch.tensor([2, 0])
    out = model(input_ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (2, 3)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    single = model(input_ids[1:, 2:], attention_mask=mask[1:, 2:]).logits
    torch.testing.assert_close(single[0, 0], out.logits[1, 2])


# ----------------------------------------------------------------------------------------------------------
# Attention routing
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "routing", "calls_per_layer"),
    [
        ("gated", "attention", 2),
        ("stack", "attention", 1),
        ("gated", "ssm", 0),
        ("stack", "ssm", 0),
    ],
)
def test_attention_routing_goes_through_sdpa(
    monkeypatch: pytest.MonkeyPatch, arch: str, routing: str, calls_per_layer: int
) -> None:
    calls: list[tuple[int, ...]] = []
    original = torch.nn.functional.scaled_dot_product_attention

    def counting(query: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(tuple(query.shape))
        return original(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    model = BiGSForMaskedLM(tiny_config(arch=arch, routing=routing))
    model(torch.randint(0, 60, (2, 16)))
    assert len(calls) == calls_per_layer * 2
    assert all(shape == (2, 4, 16, 8) for shape in calls)  # batch, heads, length, head dim


def test_self_attention_equals_explicit_softmax_attention() -> None:
    torch.manual_seed(10)
    attention = SelfAttention(hidden_size=32, num_heads=4, dropout=0.0, output_projection=True).double()
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    padding = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1] * 7]).bool()
    with torch.no_grad():
        q, k, v = attention.qkv_proj(x).split(32, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(2, 7, 4, 8).transpose(1, 2)

        scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(8)
        scores = scores.masked_fill(~padding[:, None, None, :], float("-inf"))
        mixed = (scores.softmax(-1) @ heads(v)).transpose(1, 2).reshape(2, 7, 32)
        expected = attention.out_proj(mixed)
    torch.testing.assert_close(attention(x, padding), expected)


# ----------------------------------------------------------------------------------------------------------
# The converter
# ----------------------------------------------------------------------------------------------------------


def their_expected_shapes(config: BiGSConfig, head: str, num_labels: int = 2) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the authors' PyTorch port (jxiw/BiGS, BiGS/modeling_bigs.py), written out by hand."""
    d, inner, n = config.hidden_size, config.intermediate_size, config.state_size
    shapes: dict[str, tuple[int, ...]] = {
        "bigs.embeddings.word_embeddings.weight": (config.vocab_size, d),
        "bigs.embeddings.position_embeddings.weight": (config.max_position_embeddings, d),
        "bigs.embeddings.token_type_embeddings.weight": (config.type_vocab_size, d),
        "bigs.embeddings.LayerNorm.weight": (d,),
        "bigs.embeddings.LayerNorm.bias": (d,),
        "bigs.embeddings.position_ids": (1, config.max_position_embeddings),
    }
    for i in range(config.num_layers):
        layer = f"bigs.encoder.layer.{i}."
        shapes |= {layer + "LayerNorm.weight": (d,), layer + "LayerNorm.bias": (d,)}
        for name, (out_features, in_features) in {
            "dv": (inner, d),
            "du_forward": (d, d),
            "du_backward": (d, d),
            "duc_forward": (d, d),
            "duc_backward": (d, d),
            "dol": (inner, d),
            "do": (d, inner),
        }.items():
            shapes |= {f"{layer}{name}.weight": (out_features, in_features), f"{layer}{name}.bias": (out_features,)}
        for ssm in ("fs4", "bs4"):
            shapes |= {
                f"{layer}{ssm}.D": (1,),
                f"{layer}{ssm}.kernel.C": (n, 2),
                f"{layer}{ssm}.kernel.log_step": (1,),
                f"{layer}{ssm}.kernel.A_re": (n,),
                f"{layer}{ssm}.kernel.A_im": (n,),
            }
    if head == "mlm":
        shapes |= {
            "cls.predictions.bias": (config.vocab_size,),
            "cls.predictions.transform.dense.weight": (d, d),
            "cls.predictions.transform.dense.bias": (d,),
            "cls.predictions.transform.LayerNorm.weight": (d,),
            "cls.predictions.transform.LayerNorm.bias": (d,),
            "cls.predictions.decoder.weight": (config.vocab_size, d),
            "cls.predictions.decoder.bias": (config.vocab_size,),
        }
    else:
        shapes |= {
            "bigs.pooler.dense.weight": (d, d),
            "bigs.pooler.dense.bias": (d,),
            "classifier.weight": (num_labels, d),
            "classifier.bias": (num_labels,),
        }
    return shapes


@pytest.mark.parametrize("head", ["mlm", "classification"])
def test_converter_round_trip_through_the_authors_names(head: str) -> None:
    config = tiny_config()
    model = BiGSForMaskedLM(config) if head == "mlm" else BiGSForSequenceClassification(config, num_labels=2)
    randomize_(model, seed=11)
    ours = model.state_dict()
    theirs = export_state_dict(ours)
    assert {name: tuple(t.shape) for name, t in theirs.items()} == their_expected_shapes(config, head)
    c = theirs["bigs.encoder.layer.1.bs4.kernel.C"]
    torch.testing.assert_close(c[:, 0], ours["backbone.encoder.layers.1.backward_routing.C_re"])
    torch.testing.assert_close(c[:, 1], ours["backbone.encoder.layers.1.backward_routing.C_im"])
    back = convert_state_dict(theirs)
    assert back.keys() == ours.keys()
    for name, tensor in ours.items():
        assert torch.equal(back[name], tensor), name


def test_converter_accepts_a_bare_backbone_and_rejects_what_it_cannot_place() -> None:
    theirs = export_state_dict(BiGSForMaskedLM(tiny_config()).state_dict())
    bare = {name.removeprefix("bigs."): t for name, t in theirs.items()}
    assert convert_state_dict(bare).keys() == convert_state_dict(theirs).keys()
    with pytest.raises(ValueError, match="seq_relationship"):
        convert_state_dict({**theirs, "cls.seq_relationship.weight": torch.zeros(2, 32)})
    untied = dict(theirs)
    untied["cls.predictions.decoder.weight"] = theirs["cls.predictions.decoder.weight"] + 1
    with pytest.raises(ValueError, match="ties"):
        convert_state_dict(untied)
    with pytest.raises(ValueError, match="gated"):
        export_state_dict(BiGSForMaskedLM(tiny_config(arch="stack")).state_dict())


def write_their_checkpoint(directory: Path, model: torch.nn.Module, config: BiGSConfig, **extra: object) -> None:
    their_config = {
        "model_type": "BiGS",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "intermediate_size": config.intermediate_size,
        "num_ssm": config.state_size,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "layer_norm_eps": config.layer_norm_eps,
        "hidden_dropout_prob": config.dropout,
        "pre_norm": True,
        "pooler_type": "non_padding_mean",
        **extra,
    }
    (directory / "config.json").write_text(json.dumps(their_config))
    torch.save(export_state_dict(model.state_dict()), directory / "pytorch_model.bin")


def test_load_pretrained_from_a_local_directory_reproduces_the_model(tmp_path: Path) -> None:
    config = tiny_config()
    original = BiGSForMaskedLM(config)
    randomize_(original, seed=12)
    write_their_checkpoint(tmp_path, original, config)
    loaded = load_pretrained(tmp_path)
    input_ids = torch.randint(0, 60, (2, 16))
    torch.testing.assert_close(loaded.eval()(input_ids).logits, original.eval()(input_ids).logits)
    # fine-tuning start: the backbone comes from the MLM checkpoint, the pooler and classifier are fresh
    classifier = load_pretrained(tmp_path, task="classification", num_labels=3)
    assert classifier.classifier.weight.shape == (3, 32)
    torch.testing.assert_close(
        classifier.backbone.encoder.layers[1].mix_proj.weight, original.backbone.encoder.layers[1].mix_proj.weight
    )


def test_load_pretrained_offline_fails_with_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args: object, **kwargs: object) -> str:
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache\nand outgoing traffic is off")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(RuntimeError) as error:
        load_pretrained("JunxiongWang/BiGS_128")
    message = str(error.value)
    assert "\n" not in message
    assert "JunxiongWang/BiGS_128" in message and "offline" in message


def test_config_from_theirs_maps_field_names() -> None:
    config = bigs_convert.config_from_theirs(
        {"num_hidden_layers": 23, "num_ssm": 64, "hidden_dropout_prob": 0.1, "pooler_type": "mean"}
    )
    assert config == BiGSConfig(pooling="mean")


def their_mlm_forward(theirs: dict[str, torch.Tensor], input_ids: torch.Tensor, config: BiGSConfig) -> torch.Tensor:
    """MLM logits computed from a state dict in the authors' names, step by step as their model does.

    Catches swaps between same-shaped tensors (dv/dol, du_forward/duc_forward, fs4/bs4) that a round trip
    through the converter cannot see, because both directions come from one table.
    """

    def linear(name: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, theirs[name + ".weight"], theirs[name + ".bias"])

    def layer_norm(name: str, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], theirs[name + ".weight"], theirs[name + ".bias"], config.layer_norm_eps)

    def gelu(x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=config.gelu_approximate)

    def s4(name: str, u: torch.Tensor) -> torch.Tensor:
        length = u.shape[1]
        c = theirs[name + ".kernel.C"]
        a = torch.complex(theirs[name + ".kernel.A_re"].clamp(max=-1e-4), theirs[name + ".kernel.A_im"])
        dt_a = theirs[name + ".kernel.log_step"].exp() * a
        weights = torch.complex(c[:, 0], c[:, 1]) * (dt_a.exp() - 1) / a
        kernel = (weights[:, None] * torch.exp(dt_a[:, None] * torch.arange(length))).sum(0).real
        y = torch.fft.irfft(
            torch.fft.rfft(u, n=2 * length, dim=1) * torch.fft.rfft(kernel, n=2 * length)[None, :, None],
            n=2 * length,
            dim=1,
        )[:, :length]
        return y + theirs[name + ".D"] * u

    positions = torch.arange(input_ids.shape[1])
    hidden = (
        theirs["bigs.embeddings.word_embeddings.weight"][input_ids]
        + theirs["bigs.embeddings.position_embeddings.weight"][positions]
        + theirs["bigs.embeddings.token_type_embeddings.weight"][torch.zeros_like(input_ids)]
    )
    hidden = layer_norm("bigs.embeddings.LayerNorm", hidden)
    for i in range(config.num_layers):
        p = f"bigs.encoder.layer.{i}."
        h = layer_norm(p + "LayerNorm", hidden)
        v = gelu(linear(p + "dv", h))
        u_forward = gelu(linear(p + "du_forward", h))
        u_backward = gelu(linear(p + "du_backward", h.flip(1)))
        uc_forward = linear(p + "duc_forward", s4(p + "fs4", u_forward))
        uc_backward = linear(p + "duc_backward", s4(p + "bs4", u_backward)).flip(1)
        hidden = hidden + linear(p + "do", gelu(linear(p + "dol", uc_forward * uc_backward)) * v)
    h = layer_norm("cls.predictions.transform.LayerNorm", F.gelu(linear("cls.predictions.transform.dense", hidden)))
    return F.linear(h, theirs["cls.predictions.decoder.weight"], theirs["cls.predictions.bias"])


@pytest.mark.parametrize("gelu_approximate", ["tanh", "none"])
def test_converted_weights_compute_what_the_authors_model_computes(gelu_approximate: str) -> None:
    config = tiny_config(gelu_approximate=gelu_approximate)
    model = BiGSForMaskedLM(config).double()
    randomize_(model, seed=13)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("log_dt"):
                parameter.uniform_(math.log(0.01), 0.0)  # a realistic step; random ones can be huge
    model.eval()
    input_ids = torch.randint(0, 60, (2, 16))
    theirs = export_state_dict(model.state_dict())
    torch.testing.assert_close(their_mlm_forward(theirs, input_ids, config), model(input_ids).logits)
    # and a checkpoint in their names, loaded the other way, gives the same model
    rebuilt = BiGSForMaskedLM(config).double()
    rebuilt.load_state_dict(convert_state_dict(theirs))
    torch.testing.assert_close(rebuilt.eval()(input_ids).logits, model(input_ids).logits)
