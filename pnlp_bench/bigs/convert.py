"""Load the authors' released BiGS checkpoints into ``pnlp_bench.bigs.model``, and write ours in their names.

The released weights (Hugging Face ``JunxiongWang/BiGS_128``, ``_512``, ``_1024``, ``_4096``, ``_128_MNLI``,
``_512_MNLI``) are read through the parameter names of the authors' PyTorch port (GitHub ``jxiw/BiGS``,
``BiGS/modeling_bigs.py``). Their backbone sits under ``bigs.``; heads are top level. Mapping, theirs -> ours
(d hidden, I intermediate, N state size, V vocabulary, P positions, T token types; shapes are theirs)::

    bigs.embeddings.word_embeddings.weight        (V, d) backbone.embeddings.word_embeddings.weight
    bigs.embeddings.position_embeddings.weight    (P, d) backbone.embeddings.position_embeddings.weight
    bigs.embeddings.token_type_embeddings.weight  (T, d) backbone.embeddings.token_type_embeddings.weight
    bigs.embeddings.LayerNorm.{weight,bias}       (d,)   backbone.embeddings.layer_norm.{weight,bias}
    bigs.embeddings.position_ids                  (1, P) dropped: a buffer (arange), recomputed on the fly
    bigs.encoder.layer.{i}.                              backbone.encoder.layers.{i}.
        LayerNorm.{weight,bias}                   (d,)       norm.{weight,bias}
        dv.{weight,bias}                          (I, d)     gate_proj      W_v
        du_forward.{weight,bias}                  (d, d)     forward_in_proj   W_f
        du_backward.{weight,bias}                 (d, d)     backward_in_proj  W_b
        fs4.kernel.A_re / A_im                    (N,)       forward_routing.A_re / A_im
        fs4.kernel.C                              (N, 2)     forward_routing.C_re = C[:, 0], C_im = C[:, 1]
        fs4.kernel.log_step                       (1,)       forward_routing.log_dt
        fs4.D                                     (1,)       forward_routing.D
        bs4.*                                                backward_routing.* (same as fs4)
        duc_forward.{weight,bias}                 (d, d)     forward_out_proj  W_cf
        duc_backward.{weight,bias}                (d, d)     backward_out_proj W_cb
        dol.{weight,bias}                         (I, d)     mix_proj       W_l
        do.{weight,bias}                          (d, I)     out_proj       W_o
    bigs.pooler.dense.{weight,bias}               (d, d) pooler.dense.{weight,bias}   (classification heads)
    cls.predictions.transform.dense.*             (d, d) mlm_head.dense.*
    cls.predictions.transform.LayerNorm.*         (d,)   mlm_head.layer_norm.*
    cls.predictions.bias                          (V,)   mlm_head.bias
    cls.predictions.decoder.weight                (V, d) dropped: tied to the word embeddings (checked equal)
    cls.predictions.decoder.bias                  (V,)   dropped: the same tensor as cls.predictions.bias
    classifier.{weight,bias}                  (labels, d) classifier.{weight,bias}

The ``bigs.`` prefix is optional on input (a checkpoint saved from their bare ``BiGSModel`` has none), and
``s4_bert.`` (the attribute name in their Flax MLM model) is accepted as well. Unknown names raise rather
than being dropped silently. Only ``arch="gated", routing="ssm"`` models have a counterpart in their code.

Their PyTorch ``BiGSModel`` always builds a pooler, even under the MLM head where it is never used; our MLM
model has none, so ``load_pretrained`` drops it there (see the parameter count in ``bigs.py``).

Config fields, theirs -> ours: ``num_hidden_layers`` -> ``num_layers``, ``num_ssm`` -> ``state_size``,
``hidden_dropout_prob`` -> ``dropout``, ``pooler_type`` -> ``pooling`` (``"mean"`` or
``"non_padding_mean"``); ``vocab_size``, ``hidden_size``, ``intermediate_size``, ``max_position_embeddings``,
``type_vocab_size``, ``layer_norm_eps`` keep their names.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from pnlp_bench.core.checkpoint import load_checkpoint
from pnlp_bench.bigs.model import (
    BiGSConfig,
    BiGSForMaskedLM,
    BiGSForMultipleChoice,
    BiGSForSequenceClassification,
)

logger = logging.getLogger(__name__)

Task = Literal["mlm", "classification", "multiple_choice"]

_THEIR_BACKBONE_PREFIX = "bigs."
_ACCEPTED_BACKBONE_PREFIXES = ("bigs.", "BiGS.", "s4_bert.")

_TOP_LEVEL: dict[str, str] = {
    "embeddings.word_embeddings.weight": "backbone.embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight": "backbone.embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight": "backbone.embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight": "backbone.embeddings.layer_norm.weight",
    "embeddings.LayerNorm.bias": "backbone.embeddings.layer_norm.bias",
    "pooler.dense.weight": "pooler.dense.weight",
    "pooler.dense.bias": "pooler.dense.bias",
    "cls.predictions.transform.dense.weight": "mlm_head.dense.weight",
    "cls.predictions.transform.dense.bias": "mlm_head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "mlm_head.layer_norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "mlm_head.layer_norm.bias",
    "cls.predictions.bias": "mlm_head.bias",
    "classifier.weight": "classifier.weight",
    "classifier.bias": "classifier.bias",
}
# names that live under their backbone prefix (the rest are heads, at top level)
_THEIR_BACKBONE_NAMES = ("embeddings.", "encoder.", "pooler.")

_LINEARS: dict[str, str] = {
    "dv": "gate_proj",
    "du_forward": "forward_in_proj",
    "du_backward": "backward_in_proj",
    "duc_forward": "forward_out_proj",
    "duc_backward": "backward_out_proj",
    "dol": "mix_proj",
    "do": "out_proj",
    "LayerNorm": "norm",
}
_SSMS: dict[str, str] = {"fs4": "forward_routing", "bs4": "backward_routing"}
_SSM_SCALARS: dict[str, str] = {"kernel.A_re": "A_re", "kernel.A_im": "A_im", "kernel.log_step": "log_dt", "D": "D"}

_LAYER: dict[str, str] = {
    **{f"{theirs}.{kind}": f"{ours}.{kind}" for theirs, ours in _LINEARS.items() for kind in ("weight", "bias")},
    **{
        f"{their_ssm}.{theirs}": f"{our_ssm}.{ours}"
        for their_ssm, our_ssm in _SSMS.items()
        for theirs, ours in _SSM_SCALARS.items()
    },
}
_LAYER_INVERSE = {ours: theirs for theirs, ours in _LAYER.items()}
_TOP_LEVEL_INVERSE = {ours: theirs for theirs, ours in _TOP_LEVEL.items()}

_THEIR_LAYER = re.compile(r"encoder\.layer\.(\d+)\.(.+)")
_OUR_LAYER = re.compile(r"backbone\.encoder\.layers\.(\d+)\.(.+)")

_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
_DECODER_WEIGHT = "cls.predictions.decoder.weight"
_DECODER_BIAS = "cls.predictions.decoder.bias"
_OUTPUT_BIAS = "cls.predictions.bias"
_DERIVED = ("embeddings.position_ids", "embeddings.token_type_ids", _DECODER_WEIGHT, _DECODER_BIAS)


def _some(names: list[str], shown: int = 5) -> str:
    """A few of many names, so that an error message stays readable."""
    names = sorted(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _strip_backbone_prefix(name: str) -> str:
    for prefix in _ACCEPTED_BACKBONE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def convert_state_dict(theirs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' PyTorch-port state dict -> ours (names in the module docstring). Raises on unknown names."""
    plain = {_strip_backbone_prefix(name): tensor for name, tensor in theirs.items()}
    ours: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for name, tensor in plain.items():
        if name in _DERIVED:
            continue
        if name in _TOP_LEVEL:
            ours[_TOP_LEVEL[name]] = tensor
            continue
        layer = _THEIR_LAYER.fullmatch(name)
        if layer is None:
            unknown.append(name)
            continue
        index, rest = layer.groups()
        prefix = f"backbone.encoder.layers.{index}."
        ssm_name = rest.removesuffix(".kernel.C")
        if rest.endswith(".kernel.C") and ssm_name in _SSMS:
            if tensor.shape[-1] != 2:
                raise ValueError(f"{name}: expected C of shape (N, 2) (real, imaginary), got {tuple(tensor.shape)}")
            ours[f"{prefix}{_SSMS[ssm_name]}.C_re"] = tensor[..., 0].clone()
            ours[f"{prefix}{_SSMS[ssm_name]}.C_im"] = tensor[..., 1].clone()
        elif rest in _LAYER:
            ours[prefix + _LAYER[rest]] = tensor
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"no BiGS counterpart for checkpoint entries: {_some(unknown)}")
    _check_tied_decoder(plain, ours)
    return ours


def _check_tied_decoder(plain: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> None:
    """Our decoder *is* the word embedding matrix; refuse a checkpoint whose decoder differs from it."""
    decoder, words = plain.get(_DECODER_WEIGHT), plain.get(_WORD_EMBEDDINGS)
    if decoder is not None and words is not None and not torch.equal(decoder, words):
        raise ValueError(f"{_DECODER_WEIGHT} differs from the word embeddings; this model ties them")
    decoder_bias = plain.get(_DECODER_BIAS)
    if decoder_bias is None:
        return
    if _OUTPUT_BIAS not in plain:
        ours["mlm_head.bias"] = decoder_bias  # a save that deduplicated the shared tensor the other way round
    elif not torch.equal(decoder_bias, plain[_OUTPUT_BIAS]):
        raise ValueError(f"{_DECODER_BIAS} differs from {_OUTPUT_BIAS}; they are one tensor in the authors' model")


def export_state_dict(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Ours -> the authors' PyTorch-port names, as their ``BiGSFor*`` classes would save them.

    Adds what their model stores redundantly: the decoder weight (= word embeddings) and bias
    (= output bias) when an MLM head is present, and the ``position_ids`` buffer.
    """
    theirs: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    complex_parts: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in ours.items():
        if name in _TOP_LEVEL_INVERSE:
            their_name = _TOP_LEVEL_INVERSE[name]
            prefix = _THEIR_BACKBONE_PREFIX if their_name.startswith(_THEIR_BACKBONE_NAMES) else ""
            theirs[prefix + their_name] = tensor
            continue
        layer = _OUR_LAYER.fullmatch(name)
        if layer is None:
            unknown.append(name)
            continue
        index, rest = layer.groups()
        prefix = f"{_THEIR_BACKBONE_PREFIX}encoder.layer.{index}."
        routing, _, parameter = rest.rpartition(".")
        if parameter in ("C_re", "C_im") and routing in _SSMS.values():
            ssm_name = next(theirs_ssm for theirs_ssm, ours_ssm in _SSMS.items() if ours_ssm == routing)
            complex_parts.setdefault(f"{prefix}{ssm_name}.kernel.C", {})[parameter] = tensor
        elif rest in _LAYER_INVERSE:
            theirs[prefix + _LAYER_INVERSE[rest]] = tensor
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(
            "only arch='gated', routing='ssm' models have a counterpart in the authors' code; "
            f"no name for: {_some(unknown)}"
        )
    for their_name, parts in complex_parts.items():
        if set(parts) != {"C_re", "C_im"}:
            raise ValueError(f"{their_name}: needs both C_re and C_im, got {sorted(parts)}")
        theirs[their_name] = torch.stack([parts["C_re"], parts["C_im"]], dim=-1)
    words = theirs.get(_THEIR_BACKBONE_PREFIX + _WORD_EMBEDDINGS)
    if _OUTPUT_BIAS in theirs and words is not None:
        theirs[_DECODER_WEIGHT] = words
        theirs[_DECODER_BIAS] = theirs[_OUTPUT_BIAS]
    positions = theirs.get(_THEIR_BACKBONE_PREFIX + "embeddings.position_embeddings.weight")
    if positions is not None:
        theirs[_THEIR_BACKBONE_PREFIX + "embeddings.position_ids"] = torch.arange(
            positions.shape[0], device=positions.device
        )[None]
    return theirs


def config_from_theirs(their_config: dict, **overrides: object) -> BiGSConfig:
    """Their ``config.json`` (a ``BiGSConfig`` of ``jxiw/BiGS``) -> ours; ``overrides`` win."""
    if not their_config.get("pre_norm", True):
        raise ValueError("the checkpoint is post-norm (pre_norm=false); only the released pre-norm BiGS is supported")
    defaults = BiGSConfig()
    fields: dict[str, object] = {
        "vocab_size": their_config.get("vocab_size", defaults.vocab_size),
        "hidden_size": their_config.get("hidden_size", defaults.hidden_size),
        "num_layers": their_config.get("num_hidden_layers", defaults.num_layers),
        "intermediate_size": their_config.get("intermediate_size", defaults.intermediate_size),
        "state_size": their_config.get("num_ssm", defaults.state_size),
        "max_position_embeddings": their_config.get("max_position_embeddings", defaults.max_position_embeddings),
        "type_vocab_size": their_config.get("type_vocab_size", defaults.type_vocab_size),
        "layer_norm_eps": their_config.get("layer_norm_eps", defaults.layer_norm_eps),
        "dropout": their_config.get("hidden_dropout_prob", defaults.dropout),
        "pooling": "mean" if their_config.get("pooler_type") == "mean" else "non_padding_mean",
        "arch": "gated",
        "routing": "ssm",
    }
    fields.update(overrides)
    return BiGSConfig(**fields)  # type: ignore[arg-type]


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _download(repo_id: str, filename: str) -> Path | None:
    """Fetch one file of a hub repository; None if the repository has no such file."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError:
        raise RuntimeError(
            f"cannot fetch {repo_id!r}: huggingface_hub is not installed; pass a local checkpoint directory instead"
        ) from None
    try:
        return Path(hf_hub_download(repo_id, filename))
    except EntryNotFoundError as error:
        if isinstance(error, LocalEntryNotFoundError):  # not cached and the hub cannot be reached
            raise _offline_error(repo_id, error) from None
        return None
    except Exception as error:  # network, authentication or missing repository: all end the same way
        raise _offline_error(repo_id, error) from None


def _offline_error(repo_id: str, error: Exception) -> RuntimeError:
    return RuntimeError(
        f"cannot download {repo_id!r} from the Hugging Face hub ({type(error).__name__}); offline? "
        "Pass a local directory holding config.json and model.safetensors or pytorch_model.bin instead."
    )


def _locate_checkpoint(repo_id_or_path: str | Path) -> tuple[Path, Path]:
    """(config.json, weights file) from a local directory, else from the hub."""
    local = Path(repo_id_or_path)
    if local.is_dir():
        weights = [local / name for name in _WEIGHT_FILES if (local / name).is_file()]
        if not (local / "config.json").is_file() or not weights:
            raise FileNotFoundError(f"{local} needs config.json and one of {_WEIGHT_FILES}")
        return local / "config.json", weights[0]
    repo_id = str(repo_id_or_path)
    config_path = _download(repo_id, "config.json")
    if config_path is None:
        raise FileNotFoundError(f"{repo_id!r} has no config.json")
    for name in _WEIGHT_FILES:
        weights_path = _download(repo_id, name)
        if weights_path is not None:
            return config_path, weights_path
    raise FileNotFoundError(f"{repo_id!r} has none of {_WEIGHT_FILES} (Flax-only weights are not supported)")


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return load_checkpoint(path, "download it again (delete it from the Hugging Face cache) or pass another folder")


def load_pretrained(
    repo_id_or_path: str | Path,
    task: Task = "mlm",
    num_labels: int | None = None,
    **config_overrides: object,
) -> nn.Module:
    """Build our model for ``task`` and fill it with a released checkpoint (hub id or local directory).

    The backbone must be complete. Head parameters the checkpoint lacks, or has with another shape (an MNLI
    head of 3 labels loaded for a 2-label task), keep their fresh initialisation, as fine-tuning expects;
    checkpoint entries the model has no place for (the pooler under an MLM head) are dropped.
    """
    config_path, weights_path = _locate_checkpoint(repo_id_or_path)
    their_config = json.loads(config_path.read_text())
    config = config_from_theirs(their_config, **config_overrides)
    model: nn.Module
    if task == "mlm":
        model = BiGSForMaskedLM(config)
    elif task == "classification":
        labels = num_labels or len(their_config.get("id2label") or {}) or 2
        model = BiGSForSequenceClassification(config, num_labels=labels)
    elif task == "multiple_choice":
        model = BiGSForMultipleChoice(config)
    else:
        raise ValueError(f"task {task!r}; expected one of ('mlm', 'classification', 'multiple_choice')")
    _load_into(model, convert_state_dict(_read_weights(weights_path)))
    return model


def _load_into(model: nn.Module, converted: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing_backbone = [name for name in expected if name.startswith("backbone.") and name not in converted]
    if missing_backbone:
        raise ValueError(f"checkpoint lacks backbone parameters: {_some(missing_backbone)}")
    usable: dict[str, torch.Tensor] = {}
    for name, tensor in converted.items():
        if name not in expected:
            logger.info("dropping checkpoint entry %s: this model has no such parameter", name)
        elif tensor.shape != expected[name].shape:
            if name.startswith("backbone."):
                raise ValueError(f"{name}: checkpoint {tuple(tensor.shape)} != model {tuple(expected[name].shape)}")
            logger.info("re-initialising %s: checkpoint shape %s", name, tuple(tensor.shape))
        else:
            usable[name] = tensor
    fresh = sorted(set(expected) - set(usable))
    if fresh:
        logger.info("freshly initialised (not in the checkpoint): %s", fresh)
    model.load_state_dict(usable, strict=False)
