"""A controlled check of how fast a routing learns to read its neighbours: masked LM on blocks of token pairs.

Every block is ``a1 a1 a2 a2 ... a64 a64`` with the a's drawn uniformly from ``COPY_TOKENS`` (5,000 ordinary
word-piece ids), so a masked token is exactly its pair partner, one position to the left or right. Nothing
else in the block helps: a bag of its words, or the token a position shows, gives almost nothing (the levels
below). The masking is the pretraining's own (`masking.mask_tokens`: rate, cap, 80/10/10), and so are the
optimiser, the warm-up, gradient clipping and the precision (`trainer=mlm_cpu`); after the warm-up the learning
rate stays at its peak, so the curve is not shaped by a decay horizon.

What it answers: given the pretraining's optimiser, how many steps does each encoder take to learn to copy a
neighbour, the simplest use of word order there is? Reference levels on the fixed evaluation masking:

* ``shown_level``: the share of targets whose input position shows the target itself (the 10% "keep" of
  80/10/10, plus chance): the accuracy of an encoder that reads no context at all.
* ``ceiling``: the share of targets whose partner is not itself hidden ([MASK] or a random token): the best
  accuracy an encoder that reads its neighbours can reach.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from pnlp_bench.bigs.config import BiGSTrainerConfig
from pnlp_bench.bigs.masking import IGNORE_INDEX, mask_tokens
from pnlp_bench.bigs.model import BiGSForMaskedLM
from pnlp_bench.bigs.optim import build_optimizer, build_schedule
from pnlp_bench.bigs.pretrain import masked_lm_loss
from pnlp_bench.bigs.tokenization import Vocabulary
from pnlp_bench.core.device import autocast_for

COPY_TOKENS = (1_000, 6_000)  # ordinary ids of the BERT uncased vocabulary (no special or unused entries)
EVAL_SEED = 12_345


def pair_blocks(count: int, length: int, generator: torch.Generator, tokens: tuple[int, int] = COPY_TOKENS) -> torch.Tensor:
    """[count, length] blocks of pairs: positions 2k and 2k+1 hold the same token."""
    if length < 2 or length % 2:
        raise ValueError(f"the copy task needs an even block length >= 2, got {length}")
    low, high = tokens
    return torch.randint(low, high, (count, length // 2), generator=generator).repeat_interleave(2, dim=1)


def partner(ids: torch.Tensor) -> torch.Tensor:
    """The pair partner of every position (2k <-> 2k+1)."""
    index = torch.arange(ids.shape[1]) ^ 1
    return ids[:, index]


def reference_levels(inputs: torch.Tensor, ids: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """shown_level and ceiling (module docstring) over the targets of one masked batch."""
    targets = labels != IGNORE_INDEX
    partner_shown = partner(inputs) == ids  # the partner's input still holds the target
    return {"shown_level": float((inputs == ids)[targets].float().mean()),
            "ceiling": float(partner_shown[targets].float().mean())}


def evaluate(model: BiGSForMaskedLM, batches: list[tuple[torch.Tensor, torch.Tensor]], config: BiGSTrainerConfig,
             device: torch.device) -> dict[str, float]:
    model.eval()
    total, count, correct = 0.0, 0, 0
    with torch.no_grad(), autocast_for(config.precision, device):
        for inputs, labels in batches:
            loss, masked, right = masked_lm_loss(model, inputs.to(device), labels.to(device))
            total, count, correct = total + loss.item() * masked, count + masked, correct + right
    model.train()
    return {"loss": total / count, "accuracy": correct / count}


def copy_task_curve(
    model: BiGSForMaskedLM,
    vocab: Vocabulary,
    config: BiGSTrainerConfig,
    steps: int,
    eval_every: int,
    seed: int,
    length: int = 128,
    eval_batches: int = 4,
    stop_at: float | None = None,
    tokens: tuple[int, int] = COPY_TOKENS,
    on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train `model` on the copy task for at most `steps` steps of `config.batch_size` blocks; score the fixed
    evaluation batches every `eval_every` steps (and at step 0). Stops early once the evaluation accuracy reaches
    `stop_at` of the ceiling. Returns the curve, the reference levels and the first step at which the accuracy
    passed half of the ceiling (None if it never did)."""
    device = torch.device("cpu")
    torch.manual_seed(seed)
    data = torch.Generator().manual_seed(seed)
    held_out = torch.Generator().manual_seed(EVAL_SEED)
    batches, levels = [], []
    for _ in range(eval_batches):
        ids = pair_blocks(config.batch_size, length, held_out, tokens)
        inputs, labels = mask_tokens(ids, vocab, held_out, config.mlm_probability, config.max_predictions)
        batches.append((inputs, labels))
        levels.append(reference_levels(inputs, ids, labels))
    reference = {key: sum(level[key] for level in levels) / len(levels) for key in ("shown_level", "ceiling")}
    optimizer = build_optimizer(model, config)
    warmup = config.warmup_for(steps)
    schedule = build_schedule(optimizer, warmup, steps, "constant")
    curve: list[dict[str, Any]] = []
    started = time.perf_counter()

    def score(step: int, train_loss: float | None) -> dict[str, Any]:
        point = {"step": step, "tokens": step * config.batch_size * length, "train_loss": train_loss,
                 **evaluate(model, batches, config, device), "seconds": round(time.perf_counter() - started, 1)}
        curve.append(point)
        if on_eval is not None:
            on_eval(point)
        return point

    score(0, None)
    model.train()
    window: list[float] = []
    for step in range(1, steps + 1):
        ids = pair_blocks(config.batch_size, length, data, tokens)
        inputs, labels = mask_tokens(ids, vocab, data, config.mlm_probability, config.max_predictions)
        with autocast_for(config.precision, device):
            loss, _, _ = masked_lm_loss(model, inputs, labels)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        if step % eval_every == 0 or step == steps:
            point = score(step, sum(window) / len(window))
            window = []
            if stop_at is not None and point["accuracy"] >= stop_at * reference["ceiling"]:
                break
    half = 0.5 * reference["ceiling"]
    learned_at = next((point["step"] for point in curve if point["accuracy"] >= half), None)
    return {"curve": curve, **reference, "no_context_loss": math.log(tokens[1] - tokens[0]),
            "half_ceiling_step": learned_at, "warmup_steps": warmup, "steps_run": curve[-1]["step"],
            "stopped_early": curve[-1]["step"] < steps}
