"""Post-training int8: per-channel scales, weights within one quantization step, the real int8 CPU path
equal to the simulated one, predictions of a small trained model mostly unchanged, and the run record."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck
from pnlp_bench.mixer.models.heads import ClassificationHead
from pnlp_bench.mixer.models.mixer import Mixer, MixerConfig
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.quantize import QMAX, DynamicInt8Linear, Int8Bottleneck, dequantize, int8_copy, quantize_per_channel

ROOT = Path(__file__).resolve().parents[1]


def small_model(seq_len=12, feature_size=64, per_word_window=1, dim=16, labels=3) -> PNLPModel:
    torch.manual_seed(0)
    bottleneck = ProjectionBottleneck(feature_size, per_word_window, dim, "bag")
    mixer = Mixer(MixerConfig(num_layers=2, token_hidden=16, channel_hidden=24), seq_len, dim)
    return PNLPModel(bottleneck, mixer, ClassificationHead(dim, labels))


@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_scales_and_one_step_error(axis):
    torch.manual_seed(1)
    weight = torch.randn(40, 24) * torch.linspace(0.01, 3, 24)  # channels of very different ranges
    if axis == 0:
        weight = weight.T.contiguous()
    q, scale = quantize_per_channel(weight, axis)
    assert q.dtype == torch.int8 and scale.shape == (24,)
    assert int(q.abs().max()) == QMAX  # the largest weight of each channel uses the full range
    expected = weight.abs().amax(dim=1 - axis) / QMAX
    assert torch.allclose(scale, expected)
    assert scale.max() / scale.min() > 100  # one scale per channel, not one per tensor
    shape = [1, 1]
    shape[axis] = -1
    error = (dequantize(q, scale, axis) - weight).abs()
    assert torch.all(error <= scale.view(shape) / 2 + 1e-7)  # within half a step (rounding)


def test_all_zero_channel_stays_zero():
    weight = torch.zeros(3, 5)
    weight[1] = torch.arange(5.0)
    q, scale = quantize_per_channel(weight, 0)
    assert torch.all(q[0] == 0) and torch.isfinite(scale).all()
    assert torch.equal(dequantize(q, scale, 0)[0], torch.zeros(5))


def test_simulated_copy_quantizes_every_weight_and_leaves_fp32_untouched():
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    quantized, report = int8_copy(model, "simulated")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), f"{name} of the fp32 model changed"
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert report["tensors_int8"] == len(linears) + 1 and report["weights_left_fp32"] == []
    state = quantized.state_dict()
    for name in [f"{n}.weight" for n in linears] + ["bottleneck.weight"]:
        axis = 1 if name == "bottleneck.weight" else 0
        original, got = before[name], state[name]
        scale = original.abs().amax(dim=1 - axis) / QMAX
        shape = [1, 1]
        shape[axis] = -1
        assert torch.all((got - original).abs() <= scale.view(shape) / 2 + 1e-7), name  # within one step
        steps = got / scale.view(shape)
        assert torch.allclose(steps, steps.round(), atol=1e-3), name  # on the int8 grid
    for name in before:
        if not name.endswith("weight") or "norm" in name:
            assert torch.equal(state[name], before[name]), f"{name} should stay fp32"
    assert report["size_bytes_int8"] < 0.35 * report["size_bytes_fp32"]  # biases and norms stay fp32


@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_int8_bottleneck_equals_the_dequantized_one(window, weighted):
    torch.manual_seed(window)
    bottleneck = ProjectionBottleneck(32, window, 8, "bag")
    indices = torch.randint(0, 32, (3, 7, 5))
    indices[1, 4:] = PAD
    values = torch.rand(3, 7, 5) if weighted else None
    simulated = copy.deepcopy(bottleneck)
    with torch.no_grad():
        simulated.weight.copy_(dequantize(*quantize_per_channel(bottleneck.weight, 1), 1))
    expected = simulated(indices, values)
    got = Int8Bottleneck(bottleneck)(indices, values)
    assert torch.allclose(got, expected, atol=1e-5)
    assert Int8Bottleneck(bottleneck).packed_rows.dtype == torch.uint8


def test_int8_linear_is_close_to_the_dequantized_linear():
    torch.manual_seed(2)
    linear = nn.Linear(48, 20)
    simulated = copy.deepcopy(linear)
    with torch.no_grad():
        simulated.weight.copy_(dequantize(*quantize_per_channel(linear.weight, 0), 0))
    x = torch.randn(4, 9, 48)
    expected, got = simulated(x), DynamicInt8Linear(linear)(x)
    assert got.shape == expected.shape
    # Only the per-batch uint8 activation quantization separates them.
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


def test_predictions_of_a_small_trained_model_mostly_agree():
    torch.manual_seed(3)
    seq_len, feature_size, samples = 12, 64, 768
    # Each label is signalled by buckets from its own range; the model has to find them.
    labels = torch.randint(0, 3, (samples,))
    features = torch.randint(0, feature_size, (samples, seq_len, 4))
    features[:, :3, 0] = (labels[:, None] * 20 + torch.randint(0, 20, (samples, 3)))
    mask = torch.ones(samples, seq_len, dtype=torch.bool)
    model = small_model(seq_len=seq_len, feature_size=feature_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(60):
        rows = torch.randint(0, samples, (128,))
        loss = model.head.loss(model(features[rows], mask[rows]), {"label": labels[rows]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        fp32 = model(features, mask)["logits"].argmax(-1)
        assert (fp32 == labels).float().mean() > 0.9, "the model should have learned the task"
        for mode in ("simulated", "dynamic"):
            quantized, _ = int8_copy(model, mode)
            agreement = (quantized(features, mask)["logits"].argmax(-1) == fp32).float().mean()
            assert agreement >= 0.97, (mode, float(agreement))


def test_run_record_holds_int8_metrics_beside_the_fp32_ones(tmp_path):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pnlp_bench.cli", "run", "model=mixer_xs", "trainer=smoke", "trainer.epochs=1",
         "data.train_limit=200", "quantize.int8=true", "quantize.mode=dynamic", "quiet=true"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, "BENCH_OUTPUT_ROOT": str(tmp_path)},
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (metrics_path,) = tmp_path.glob("runs/mtop_sample/mixer_xs-*/metrics.json")
    record = json.loads(metrics_path.read_text())
    keys = list(record)
    assert keys.index("metrics_int8") == keys.index("metrics") + 1
    for split in ("eval", "test"):
        assert set(record["metrics_int8"][split]) == set(record["metrics"][split])
        assert record["metrics_int8"][split]["avg"].keys() == record["metrics"][split]["avg"].keys()
    assert record["quantization"]["mode"] == "dynamic" and record["quantization"]["weights_left_fp32"] == []
    assert "Traceback" not in done.stderr


def test_unknown_quantize_mode_is_refused():
    from pnlp_bench.mixer.quantize import QuantizeConfig
    from pnlp_bench.core.registry import ConfigError, typed_config

    with pytest.raises(ConfigError, match="quantize.mode must be simulated or dynamic"):
        typed_config(QuantizeConfig, {"int8": True, "mode": "fp8"}, "quantize")
