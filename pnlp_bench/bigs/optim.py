"""AdamW parameter groups and the warm-up + decay schedule shared by pretraining and fine-tuning.

Groups: biases and LayerNorm parameters get no weight decay (BERT's convention); the SSM parameters
(A_re, A_im, C_re, C_im, D, log_dt) get `ssm_lr` / `ssm_weight_decay` when set, else the common values
(the authors' script trains them like everything else). The record lists the groups.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pnlp_bench.bigs.config import BiGSTrainerConfig
from pnlp_bench.bigs.model import SSM


def parameter_groups(model: nn.Module, config: BiGSTrainerConfig) -> list[dict]:
    ssm_ids = {id(p) for module in model.modules() if isinstance(module, SSM) for p in module.parameters()}
    no_decay_ids = {
        id(p)
        for module in model.modules()
        if isinstance(module, nn.LayerNorm)
        for p in module.parameters()
    }
    groups: dict[str, dict] = {
        "decay": {"name": "decay", "params": [], "weight_decay": config.weight_decay, "lr": config.lr},
        "no_decay": {"name": "no_decay (biases, LayerNorm)", "params": [], "weight_decay": 0.0, "lr": config.lr},
        "ssm": {
            "name": "ssm (A, dt, C, D)",
            "params": [],
            "weight_decay": config.weight_decay if config.ssm_weight_decay is None else config.ssm_weight_decay,
            "lr": config.lr if config.ssm_lr is None else config.ssm_lr,
        },
    }
    seen: set[int] = set()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or id(parameter) in seen:
            continue
        seen.add(id(parameter))
        if id(parameter) in ssm_ids:
            groups["ssm"]["params"].append(parameter)
        elif id(parameter) in no_decay_ids or name.endswith("bias"):
            groups["no_decay"]["params"].append(parameter)
        else:
            groups["decay"]["params"].append(parameter)
    return [group for group in groups.values() if group["params"]]


def build_optimizer(model: nn.Module, config: BiGSTrainerConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, config), lr=config.lr, betas=tuple(config.betas), eps=config.eps)


def describe_groups(optimizer: torch.optim.Optimizer) -> list[dict]:
    return [
        {
            "name": group["name"],
            "parameters": sum(p.numel() for p in group["params"]),
            "lr": group["initial_lr"] if "initial_lr" in group else group["lr"],
            "weight_decay": group["weight_decay"],
        }
        for group in optimizer.param_groups
    ]


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak lr at `step` (0-based): linear warm-up, then linear or cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def build_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int, schedule: str) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup, total, schedule))
