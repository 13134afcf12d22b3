"""Post-training int8 quantization of a trained model, for evaluation (the paper's pNLP-Mixer rows in
Tables 5-7 are 8-bit).

What is quantized: the weight of every `nn.Linear` (token- and channel-mixing MLPs, pooling, classifier,
tagger) and the bottleneck weight, each per output channel and symmetric: scale_c = max|W_c| / 127,
q = round(W / scale_c) in [-127, 127]. Biases and LayerNorm stay fp32, as in usual int8 deployments.
Weights of other layer types (e.g. an LSTM's) stay fp32 and are listed in the report.

Two ways to run the int8 model, both on a copy (the fp32 model is never modified):
- `simulated` (default; what `metrics_int8` reports): every quantized weight is replaced by its
  dequantized value q * scale, activations stay fp32. The accuracy effect of int8 weights, on any device.
- `dynamic`: real int8 kernels on the CPU. Each Linear runs torch's `quantized::linear_dynamic` (the same
  int8 weights, packed; activations quantized per batch to uint8 on the fly, so results differ slightly
  from `simulated`); the bottleneck gathers and sums int8 weight rows with
  `quantized::embedding_bag_byte_rowwise_offsets` and scales the integer sums once per output channel,
  which is exact because the scale is per output channel. Weights take a quarter of the memory.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import Featurized
from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck, window_indices, window_values
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.mixer.trainer import Scorer, TrainerConfig, predict

QMAX = 127


@dataclass
class QuantizeConfig:
    int8: bool = False  # true: also evaluate eval/test with an int8 copy of the best checkpoint (metrics_int8)
    mode: str = "simulated"  # simulated: dequantized int8 weights, any device; dynamic: real int8 CPU kernels

    def validate(self, where: str) -> None:
        if self.mode not in {"simulated", "dynamic"}:
            raise ConfigError(f"{where}.mode must be simulated or dynamic, got {self.mode!r}")


def quantize_per_channel(weight: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8, scale fp32 per channel along `axis`): symmetric, q = round(weight / scale) in [-127, 127]."""
    reduce = [dim for dim in range(weight.dim()) if dim != axis]
    amax = weight.detach().abs().amax(dim=reduce).float()
    scale = torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))
    shape = [1] * weight.dim()
    shape[axis] = -1
    q = torch.clamp(torch.round(weight.detach().float() / scale.view(shape)), -QMAX, QMAX).to(torch.int8)
    return q, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor, axis: int) -> torch.Tensor:
    shape = [1] * q.dim()
    shape[axis] = -1
    return q.float() * scale.view(shape)


def quantizable_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]


class DynamicInt8Linear(nn.Module):
    """A Linear running torch's int8 GEMM with the per-channel int8 weights of `quantize_per_channel`."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        q, scale = quantize_per_channel(linear.weight, axis=0)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = None if linear.bias is None else linear.bias.detach().float()
        with warnings.catch_warnings():
            # torch marks its quantized tensor types deprecated; the packed int8 GEMM is what we want here.
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.quantize_per_channel(
                dequantize(q, scale, 0), scale.double(), torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8
            )
            self.packed = torch.ops.quantized.linear_prepack(quantized, bias)
        # fbgemm/x86 kernels need 7-bit activations to rule out int16 saturation (as torch's own dynamic Linear).
        self.reduce_range = torch.backends.quantized.engine in {"fbgemm", "x86"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float().contiguous()
        out = torch.ops.quantized.linear_dynamic(flat, self.packed, self.reduce_range)
        return out.reshape(*x.shape[:-1], self.out_features)


class Int8Bottleneck(nn.Module):
    """The bottleneck over int8 weight rows: out_c = scale_c * sum of the active rows' int8 values + bias_c."""

    def __init__(self, bottleneck: ProjectionBottleneck) -> None:
        super().__init__()
        self.feature_size, self.window, self.out_dim = bottleneck.feature_size, bottleneck.window, bottleneck.out_dim
        q, scale = quantize_per_channel(bottleneck.weight, axis=1)
        # Rows in the fused layout the kernel reads: out_dim bytes, then an fp32 row scale and an fp32 row
        # offset. Storing q + 128 with scale 1 and offset -128 makes the kernel return exact integer sums.
        packed = torch.empty(q.shape[0], self.out_dim + 8, dtype=torch.uint8)
        packed[:, : self.out_dim] = (q.to(torch.int16) + 128).to(torch.uint8)
        packed[:, self.out_dim :] = torch.tensor([1.0, -128.0], dtype=torch.float32).view(torch.uint8)
        self.register_buffer("packed_rows", packed)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", bottleneck.bias.detach().float().clone())

    def forward(self, indices: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        indices = window_indices(indices.long(), self.window, self.feature_size)
        if values is not None and self.window:
            values = window_values(values, self.window)
        batch, length, width = indices.shape
        flat = indices.reshape(batch * length, width)
        active = flat != PAD
        offsets = torch.zeros(flat.shape[0], dtype=torch.long)
        offsets[1:] = active.sum(dim=1).cumsum(0)[:-1]
        weights = None if values is None else values.reshape(batch * length, width)[active].float()
        sums = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
            self.packed_rows, flat[active], offsets, False, 0, False, weights, None, False
        )
        return (sums * self.scale + self.bias).reshape(batch, length, self.out_dim)


def int8_copy(model: nn.Module, mode: str = "simulated") -> tuple[nn.Module, dict[str, Any]]:
    """An int8 copy of `model` (see the module docstring) and a report of what was quantized."""
    quantized = copy.deepcopy(model).cpu() if mode == "dynamic" else copy.deepcopy(model)
    quantized.eval()
    linears = quantizable_linears(quantized)
    bottleneck = getattr(quantized, "bottleneck", None)
    covered = {f"{name}.weight" for name, _ in linears}
    if mode == "simulated":
        with torch.no_grad():
            for _, linear in linears:
                linear.weight.copy_(dequantize(*quantize_per_channel(linear.weight, 0), 0))
            if isinstance(bottleneck, ProjectionBottleneck):
                bottleneck.weight.copy_(dequantize(*quantize_per_channel(bottleneck.weight, 1), 1))
    elif mode == "dynamic":
        # Only plain Linears are swapped: a subclass may be read directly by its parent (e.g. the output
        # projection of nn.MultiheadAttention), so those keep fp32 weights and are reported as such.
        for name, linear in linears:
            if type(linear) is nn.Linear:
                parent_name, _, child = name.rpartition(".")
                setattr(quantized.get_submodule(parent_name) if parent_name else quantized, child, DynamicInt8Linear(linear))
            else:
                covered.discard(f"{name}.weight")
        if isinstance(bottleneck, ProjectionBottleneck):
            quantized.bottleneck = Int8Bottleneck(bottleneck)
        if getattr(getattr(quantized, "backbone", None), "padding_aware", False):
            quantized.backbone.padding_aware = False  # the trimmed matmuls read Linear weights the swap removed
    else:
        raise ValueError(f"quantize mode must be simulated or dynamic, got {mode!r}")
    if isinstance(bottleneck, ProjectionBottleneck):
        covered.add("bottleneck.weight")
    return quantized, quantization_report(model, covered, mode)


def quantization_report(model: nn.Module, covered: set[str], mode: str) -> dict[str, Any]:
    parameters = dict(model.named_parameters())
    int8_count = sum(parameters[name].numel() for name in covered)
    total = sum(p.numel() for p in parameters.values())
    channels = sum(parameters[name].shape[1 if name == "bottleneck.weight" else 0] for name in covered)
    left_fp32 = sorted(name for name, p in parameters.items() if p.dim() >= 2 and name not in covered)
    return {
        "mode": mode,
        "scheme": "int8 symmetric per output channel (weights); biases and norms fp32",
        "tensors_int8": len(covered),
        "parameters_int8": int8_count,
        "parameters_fp32": total - int8_count,
        # int8 weights + one fp32 scale per output channel + everything else in fp32
        "size_bytes_int8": int8_count + 4 * channels + 4 * (total - int8_count),
        "size_bytes_fp32": 4 * total,
        "weights_left_fp32": left_fp32,
    }


def evaluate_int8(
    model: nn.Module,
    data: Featurized,
    examples: dict[str, list[Example]],
    score: Scorer,
    trainer_config: TrainerConfig,
    config: QuantizeConfig,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, list]]]:
    """Eval and test metrics of an int8 copy of the (best) model, the quantization report with timings, and
    the predictions per split behind the metrics (for predictions_int8.jsonl)."""
    quantized, report = int8_copy(model, config.mode)
    device = torch.device("cpu") if config.mode == "dynamic" else next(model.parameters()).device
    # The int8 kernels take fp32 activations; autocast would hand them bf16.
    settings = dataclasses.replace(trainer_config, precision="fp32") if config.mode == "dynamic" else trainer_config
    metrics, seconds, predictions = {}, {}, {}
    for split in ("eval", "test"):
        started = time.perf_counter()
        predictions[split] = predict(quantized, data, split, settings, device)
        metrics[split] = score(examples[split], predictions[split])
        seconds[split] = time.perf_counter() - started
    report["predict_seconds"] = seconds
    return metrics, report, predictions
