"""Typed configs of the BiGS pipeline: the `backbone` (-> `BiGSConfig`) and the `trainer` (optimiser and budget).

The `trainer` class is a superset of pNLP-Mixer's `TrainerConfig` keys, so `trainer=smoke` (or any pNLP
preset) also drives a BiGS run; `trainer=glue` and `trainer=mlm` are the BiGS recipes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from pnlp_bench.bigs.model import BiGSConfig
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.checks import check_optimiser_and_device
from pnlp_bench.core.host import check_allocator

SCHEDULES = ("linear", "cosine", "constant")
# the authors' GLUE recipe (bigs.md): AdamW lr 2e-5, batch 16, 3 epochs, 10% warm-up, weight decay 0.01
GLUE_RECIPE = {"epochs": 3, "batch_size": 16, "lr": 2e-5}
# the paper's pretraining budgets, for the budget line of a pretraining record
PAPER_PRETRAINING = "the paper: ~11B tokens at length 128 for its controlled rows, ~108B for the released model"


@dataclass
class BiGSBackboneConfig:
    """`conf/backbone/bigs.yaml`; `num_layers` and `intermediate_size` normally come from `depth` and `width`."""

    name: str = "bigs"
    arch: str = "gated"
    routing: str = "ssm"
    hidden_size: int = 128
    num_layers: int = 2
    intermediate_size: int = 384
    # matched-parameter depth and width per variant, read by the YAML interpolations (kept for the record)
    depth: dict[str, Any] = field(default_factory=dict)
    width: dict[str, Any] = field(default_factory=dict)
    state_size: int = 64
    num_heads: int = 2  # attention routing only (head size 64)
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    dropout: float = 0.1
    # the authors' encoder lets pads through the SSMs; true masks them (and attention keys)
    mask_padding: bool = False
    ssm_init: str = "legs"  # HiPPO-LegS diagonal (the authors' default); lin = S4D-Lin
    pooling: str = "non_padding_mean"  # classification heads: mean over non-pad tokens (no [CLS] pooling in BiGS)
    gelu_approximate: str = "tanh"  # flax.linen.gelu, which trained the released weights
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    # attention routings: std of the query and key projection rows (null: initializer_range, BERT's init)
    query_key_initializer_range: float | None = None
    # attention routings: T5-style learned relative-position bias with this many buckets (null: none, BERT)
    relative_attention_buckets: int | None = None
    # its initial value: -slope * distance for the first head, halved per further head (null: zeros)
    relative_attention_init_slope: float | None = None

    def validate(self, where: str) -> None:
        for key in ("hidden_size", "num_layers", "intermediate_size", "state_size", "num_heads", "max_position_embeddings"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be >= 1, got {getattr(self, key)}")
        try:
            self.bigs_config(vocab_size=2)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None

    def bigs_config(self, vocab_size: int) -> BiGSConfig:
        return BiGSConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            intermediate_size=self.intermediate_size,
            state_size=self.state_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            layer_norm_eps=self.layer_norm_eps,
            dropout=self.dropout,
            arch=self.arch,  # type: ignore[arg-type]
            routing=self.routing,  # type: ignore[arg-type]
            num_heads=self.num_heads,
            mask_padding=self.mask_padding,
            ssm_init=self.ssm_init,  # type: ignore[arg-type]
            pooling=self.pooling,  # type: ignore[arg-type]
            gelu_approximate=self.gelu_approximate,  # type: ignore[arg-type]
            initializer_range=self.initializer_range,
            query_key_initializer_range=self.query_key_initializer_range,
            relative_attention_buckets=self.relative_attention_buckets,
            relative_attention_init_slope=self.relative_attention_init_slope,
        )


@dataclass
class BiGSTrainerConfig:
    """AdamW with warm-up and a decay schedule; epochs for fine-tuning, `max_steps` (or epochs) for pretraining.
    The defaults are the authors' GLUE recipe (`conf/trainer/glue.yaml`); `trainer/mlm.yaml` states what
    pretraining changes."""

    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 16
    grad_accumulation: int = 1
    lr: float = 2e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None  # wins over warmup_ratio
    schedule: str = "linear"  # linear | cosine | constant
    grad_clip: float | None = 1.0
    # SSM parameters (A, dt, C, D): null = the same lr / weight decay as the rest, as the authors' script;
    # S4's convention is a smaller lr and no weight decay for them
    ssm_lr: float | None = None
    ssm_weight_decay: float | None = None
    # masked-LM objective
    mlm_probability: float = 0.15
    max_predictions: int | None = None
    # pretraining: evaluate dev / write the resumable last.pt every this many steps (null: at the end)
    eval_every: int | None = None
    checkpoint_every: int | None = None
    # pretraining: also keep the weights at these steps (snapshots/step_<N>.pt, each scored on dev), so one run
    # gives several pretraining budgets, as the paper's 11B- and 29B-token checkpoints are steps of its 97B run;
    # a fine-tune starts from one with init=run:<config hash>@<N> (bigs/checkpoints.py)
    snapshot_steps: list[int] = field(default_factory=list)
    eval_batch_size: int = 64  # sequences per evaluation batch, at most
    # tokens per evaluation batch, whatever the sequence length (4096-token QuALITY: 4 choices = 1 example)
    eval_max_positions: int = 65_536
    device: str = "auto"  # cuda when present, else cpu
    precision: str = "auto"  # bf16 autocast (FFTs stay fp32) on cuda and on CPUs with native bf16, else fp32
    num_threads: int = 0
    # pNLP trainer keys, so every trainer preset composes with backbone=bigs: resident_data is honoured
    # (tokenized splits copied to the device once; auto = on cuda); compile=true is refused, not ignored
    resident_data: str | bool = "auto"
    compile: bool = False
    host_allocator: str = "auto"  # as the pNLP trainer's (training/host.py)

    def validate(self, where: str) -> None:
        check_allocator(self.host_allocator, where)
        check_optimiser_and_device(self, where)
        positive = ("epochs", "batch_size", "grad_accumulation", "eval_batch_size", "eval_max_positions")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("max_steps", "eval_every", "checkpoint_every", "max_predictions"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{where}.{key} must be >= 1 or null, got {value}")
        bad_snapshots = [step for step in self.snapshot_steps if not isinstance(step, int) or step < 1]
        if bad_snapshots:
            raise ConfigError(f"{where}.snapshot_steps must be whole numbers >= 1, got {bad_snapshots[0]!r}")
        if self.max_steps is not None and any(step > self.max_steps for step in self.snapshot_steps):
            raise ConfigError(f"{where}.snapshot_steps: {max(self.snapshot_steps)} is past trainer.max_steps={self.max_steps}")
        for key in ("grad_clip", "ssm_lr"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ConfigError(f"{where}.{key} must be > 0 or null, got {value}")
        for key in ("warmup_steps", "ssm_weight_decay"):
            value = getattr(self, key)
            if value is not None and not value >= 0:
                raise ConfigError(f"{where}.{key} must be >= 0 or null, got {value}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{where}.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"{where}.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"{where}.mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.resident_data not in {"auto", "true", "false"} and not isinstance(self.resident_data, bool):
            raise ConfigError(f"{where}.resident_data must be auto, true or false, got {self.resident_data!r}")
        if self.compile:
            raise ConfigError(f"{where}.compile=true is not wired to backbone=bigs runs yet")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ConfigError(f"{where}.precision must be auto, fp32 or bf16, got {self.precision!r}")

    def resident_on(self, device: torch.device) -> bool:
        if self.resident_data == "auto":
            return device.type == "cuda"
        return self.resident_data in (True, "true")

    def warmup_for(self, total_steps: int) -> int:
        return self.warmup_steps if self.warmup_steps is not None else math.ceil(self.warmup_ratio * total_steps)

    def finetune_budget(self) -> str:
        recipe = self.max_steps is None and all(getattr(self, key) == value for key, value in GLUE_RECIPE.items())
        length = f"{self.max_steps} steps" if self.max_steps else f"{self.epochs} epochs"
        text = f"{length}, batch {self.batch_size * self.grad_accumulation}, lr {self.lr:g}"
        return text + (", the authors' GLUE recipe" if recipe else ", reduced budget, not the paper protocol")

    def pretrain_budget(self, steps: int, length: int) -> str:
        tokens = steps * self.batch_size * self.grad_accumulation * length
        return (
            f"{steps:,} steps x {self.batch_size * self.grad_accumulation} x {length} tokens = {tokens:,} tokens, "
            f"reduced budget ({PAPER_PRETRAINING})"
        )
