"""The int8 weights file of an exported pNLP-Mixer: what `quantize.int8_copy(model, "simulated")` evaluates, saved.

Every weight `quantize.py` quantizes (each `nn.Linear`'s, per output channel, and the bottleneck's, per
output column) is stored as its int8 values `q` beside one fp32 scale per channel (`NAME.scale`); every
other tensor (biases, LayerNorm, weights of other layer types) is stored fp32 as it is. Reading the file
back dequantizes (`q * scale`, the same operation `int8_copy` applies), so a model loaded from it gives
exactly the predictions of the simulated int8 evaluation behind a run's `metrics_int8`.

The file is a safetensors file; its metadata names each quantized tensor's channel axis (`quantized`,
a JSON object) so a reader needs nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from pnlp_bench.mixer.models.bottleneck import ProjectionBottleneck
from pnlp_bench.mixer.quantize import dequantize, quantizable_linears, quantize_per_channel

SCALE_SUFFIX = ".scale"
AXES_KEY = "quantized"


def quantized_axes(model: nn.Module) -> dict[str, int]:
    """State-dict name -> channel axis of every weight `int8_copy` quantizes (its `simulated` mode)."""
    axes = {f"{name}.weight": 0 for name, _ in quantizable_linears(model)}
    if isinstance(getattr(model, "bottleneck", None), ProjectionBottleneck):
        axes["bottleneck.weight"] = 1
    return axes


def int8_tensors(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of the int8 file: int8 weights with their fp32 scales, the rest fp32."""
    axes = quantized_axes(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        if name in axes:
            q, scale = quantize_per_channel(tensor, axes[name])
            tensors[name], tensors[name + SCALE_SUFFIX] = q.contiguous(), scale.contiguous()
        else:
            tensors[name] = tensor.detach().float().contiguous() if tensor.is_floating_point() else tensor.contiguous()
    return tensors, {AXES_KEY: json.dumps(axes, sort_keys=True)}


def dequantized_state(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> dict[str, torch.Tensor]:
    """The fp32 state dict of an int8 file's tensors (KeyError/ValueError on a file that is not one)."""
    axes = json.loads((metadata or {})[AXES_KEY])
    state = {name: tensor for name, tensor in tensors.items() if not name.endswith(SCALE_SUFFIX)}
    for name, axis in axes.items():
        state[name] = dequantize(state[name], tensors[name + SCALE_SUFFIX], int(axis))
    return state


def size_report(tensors: dict[str, torch.Tensor], file_bytes: int, fp32_file_bytes: int) -> dict[str, Any]:
    """Bytes of the int8 file against the fp32 one, and how its tensors split into int8, scales and fp32."""
    int8_bytes = sum(t.numel() for t in tensors.values() if t.dtype == torch.int8)
    scale_bytes = sum(t.numel() * t.element_size() for name, t in tensors.items() if name.endswith(SCALE_SUFFIX))
    other = sum(t.numel() * t.element_size() for name, t in tensors.items()
                if t.dtype != torch.int8 and not name.endswith(SCALE_SUFFIX))
    return {
        "int8_file_bytes": file_bytes,
        "fp32_file_bytes": fp32_file_bytes,
        "ratio": fp32_file_bytes / file_bytes,
        "int8_weight_bytes": int8_bytes,
        "scale_bytes": scale_bytes,
        "fp32_tensor_bytes": other,
    }


def human_size(size: int) -> str:
    return f"{size:,} bytes ({size / 1024:.1f} KB, {size / 1024 ** 2:.2f} MB)"
