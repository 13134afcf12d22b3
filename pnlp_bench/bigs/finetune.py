"""Fine-tuning a BiGS-family encoder: classification, regression (STS-B) and multiple choice (QuALITY).

Every epoch trains on the shuffled train split and scores every evaluation split. What is **reported** is
the final epoch's dev score, as the paper's PyTorch numbers are (the authors' JAX script instead reports the
best dev score over all evaluations; the record keeps that too, under `best`, labelled). `best.pt` holds
the weights of the best evaluation by `data.monitor`; both it and `last.pt` are written atomically.

Runs never lose work: after every epoch `last.pt` holds what is needed to go on (weights, optimizer, schedule,
the shuffling generator, the global RNG states dropout draws from, step, best score, history; see
`pnlp_bench/core/checkpoint.py`). Started again with the same config and code in the same run folder, the
fine-tuning resumes after its last finished epoch and ends with the metrics of an uninterrupted run
(tests/test_bigs_resume.py kills one with SIGKILL to check). The final `last.pt` is the same checkpoint.

Sequences keep their fixed length (`data.max_length`) unless the encoder masks padding: without masking,
pads pass through the backward SSM and change every position's output, so a sequence's representation
must not depend on how much its batch was padded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from pnlp_bench.bigs.config import BiGSTrainerConfig
from pnlp_bench.bigs.optim import build_optimizer, build_schedule, describe_groups
from pnlp_bench.bigs.tokenization import Encoded
from pnlp_bench.core.atomic import save_torch_atomic
from pnlp_bench.core.checkpoint import load_resumable, restore_rng, save_resumable
from pnlp_bench.core.run_log import ProgressLog, logging_above
from pnlp_bench.core.device import autocast_for, resolve_device
from pnlp_bench.core.memory import PeakMemory

Scorer = Callable[[list, list], dict]


def training_cost(history: list[dict], peak_megabytes: float | None, device: torch.device) -> dict[str, Any]:
    """Time and memory of a training step, from the epochs' rows (each epoch's training time, evaluation excluded)
    and the training loop's peak memory (core/memory.py: on the CPU the resident set's growth, on CUDA the
    allocator's peak): what the long-input comparison reports per length."""
    timed = [row for row in history if row.get("train_steps")]
    seconds = sum(row["train_seconds"] for row in timed)
    steps = sum(row["train_steps"] for row in timed)
    positions = sum(row["train_positions"] for row in timed)
    return {
        "seconds_per_step": seconds / steps if steps else None,
        "positions_per_second": positions / seconds if seconds else None,
        "peak_memory_mb": peak_megabytes,
        "memory_kind": "CUDA allocator peak" if device.type == "cuda" else "growth of the resident set's peak",
        "timed_epochs": len(timed),
    }


def device_for(config: BiGSTrainerConfig) -> torch.device:
    return resolve_device(config.device)


def batch_tensors(encoded: Encoded, rows: torch.Tensor, pad: int, trim: bool, device: torch.device) -> dict[str, torch.Tensor]:
    rows = rows.to(encoded.input_ids.device)
    input_ids = encoded.input_ids[rows].long()
    token_types = encoded.token_type_ids[rows].long()
    attention_mask = input_ids != pad
    if trim:  # only when pads are masked inside the encoder, so the cut cannot change any output
        length = int(attention_mask.reshape(-1, attention_mask.shape[-1]).sum(-1).max().clamp(min=1))
        input_ids, token_types, attention_mask = input_ids[..., :length], token_types[..., :length], attention_mask[..., :length]
    return {
        "input_ids": input_ids.to(device, non_blocking=True),
        "token_type_ids": token_types.to(device, non_blocking=True),
        "attention_mask": attention_mask.to(device, non_blocking=True),
    }


def eval_batch_size(config: BiGSTrainerConfig, encoded: Encoded) -> int:
    """`eval_batch_size` sequences, capped at `eval_max_positions` tokens (all choices counted) per batch."""
    tokens_per_example = encoded.input_ids[0].numel() if len(encoded) else 1
    return max(1, min(config.eval_batch_size, config.eval_max_positions // tokens_per_example))


@torch.no_grad()
def predict(model: nn.Module, encoded: Encoded, kind: str, config: BiGSTrainerConfig, pad: int, trim: bool, device: torch.device) -> list:
    model.eval()
    predictions: list = []
    size = eval_batch_size(config, encoded)
    for start in range(0, len(encoded), size):
        rows = torch.arange(start, min(start + size, len(encoded)))
        with autocast_for(config.precision, device):
            logits = model(**batch_tensors(encoded, rows, pad, trim, device)).logits.float()
        predictions.extend(logits.squeeze(-1).tolist() if kind == "regression" else logits.argmax(-1).tolist())
    model.train()
    return predictions


def finetune(
    model: nn.Module,
    kind: str,
    encoded: dict[str, Encoded],
    labels: dict[str, list],
    score: Scorer,
    monitor: str,
    config: BiGSTrainerConfig,
    run_dir: Path,
    seed: int,
    pad: int,
    checkpoint_extra: dict[str, Any],
    quiet: bool = False,
    identity: dict[str, str] | None = None,
    resume: bool = True,
) -> dict[str, Any]:
    device = device_for(config)
    model.to(device)
    if config.resident_on(device):  # one copy to the device instead of one per batch
        encoded = {split: Encoded(t.input_ids.to(device), t.token_type_ids.to(device), t.truncated) for split, t in encoded.items()}
    trim = bool(model.config.mask_padding and model.config.pooling == "non_padding_mean")
    train = encoded["train"]
    label_dtype = torch.float32 if kind == "regression" else torch.long
    train_labels = torch.tensor(labels["train"], dtype=label_dtype)
    eval_splits = [split for split in encoded if split != "train"]
    micro_batches = -(-len(train) // config.batch_size)
    steps_per_epoch = -(-micro_batches // config.grad_accumulation)
    # max_steps caps fine-tuning (a smoke budget); the schedule then decays over the steps that will run
    total_steps = min(config.max_steps or math.inf, config.epochs * steps_per_epoch)
    optimizer = build_optimizer(model, config)
    warmup = config.warmup_for(total_steps)
    schedule = build_schedule(optimizer, warmup, total_steps, config.schedule)
    generator = torch.Generator().manual_seed(seed)
    best_value, best_epoch, best_scores = float("-inf"), 0, {}
    history: list[dict] = []
    step, first_epoch, scores = 0, 1, {}
    last_path = run_dir / "last.pt"
    identity = identity or {}
    saved = load_resumable(last_path, identity) if resume else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generator"])
        step, first_epoch, scores, history = saved["step"], saved["epoch"] + 1, saved["scores"], saved["history"]
        best_value, best_epoch, best_scores = saved["best_value"], saved["best_epoch"], saved["best_scores"]
        restore_rng(saved["rng"])  # dropout's draws, as the uninterrupted run would make them
    started = time.perf_counter()
    # history.jsonl holds the checkpoint's epochs (none on a fresh start); max_steps may end the run early
    epochs_to_run = min(config.epochs, -(-total_steps // steps_per_epoch))
    progress_log = ProgressLog(run_dir, epochs_to_run)
    history = progress_log.start(history)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    peak = PeakMemory(device)
    with logging_above(Progress(*columns, disable=quiet, transient=True)) as progress, peak:
        epochs_task = progress.add_task("epochs", total=config.epochs, completed=first_epoch - 1)
        batches_task = progress.add_task("batches", total=micro_batches)
        for epoch in range(first_epoch, config.epochs + 1):
            if step >= total_steps:  # max_steps reached (in this process or before the relaunch)
                break
            epoch_started = time.perf_counter()
            progress.reset(batches_task)
            order = torch.randperm(len(train), generator=generator)
            loss_sum, loss_count, positions, epoch_steps = 0.0, 0, 0, 0
            for index, start in enumerate(range(0, len(train), config.batch_size)):
                rows = order[start : start + config.batch_size]
                batch = batch_tensors(train, rows, pad, trim, device)
                positions += batch["input_ids"].numel()  # what the encoder computes over, pads of the batch included
                with autocast_for(config.precision, device):
                    loss = model(**batch, labels=train_labels[rows].to(device)).loss
                (loss / config.grad_accumulation).backward()
                loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
                last_micro_batch = index + 1 == micro_batches
                if (index + 1) % config.grad_accumulation == 0 or last_micro_batch:
                    if config.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    epoch_steps += 1
                progress.advance(batches_task)
                if step >= total_steps:
                    break
            train_seconds = time.perf_counter() - epoch_started
            scores = {
                split: score(labels[split], predict(model, encoded[split], kind, config, pad, trim, device)) for split in eval_splits
            }
            value = scores["eval"][monitor]
            if value > best_value:
                best_value, best_epoch, best_scores = value, epoch, scores
                save_torch_atomic(run_dir / "best.pt", {"model": model.state_dict(), "epoch": epoch, "monitor": monitor, "value": value, **checkpoint_extra})
            history.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": loss_sum / max(loss_count, 1),
                    **{f"{split}_{name}": v for split, split_scores in scores.items() for name, v in split_scores.items() if name != "examples"},
                    "lr": schedule.get_last_lr()[0],
                    "train_seconds": train_seconds,
                    "train_steps": epoch_steps,
                    "train_positions": positions,
                    "examples_per_second": min(len(train), loss_count * config.batch_size) / train_seconds,
                }
            )
            save_resumable(
                last_path,
                identity,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "generator": generator.get_state(),
                    "epoch": epoch,
                    "step": step,
                    "scores": scores,
                    "best_value": best_value,
                    "best_epoch": best_epoch,
                    "best_scores": best_scores,
                    "history": history,
                    **checkpoint_extra,  # bigs_config and task: last.pt also serves as an init= checkpoint
                },
            )
            # after last.pt, so history.jsonl is never ahead of the checkpoint a relaunch goes on from
            progress_log.record(
                history[-1],
                f"train loss {history[-1]['train_loss']:.4f}, eval {monitor} {value:.2f} (best {best_value:.2f}, epoch "
                f"{best_epoch}), {history[-1]['examples_per_second']:,.0f} examples/s",
            )
            progress.update(epochs_task, advance=1, description=f"epoch {epoch}: eval {monitor} {value:.2f}")
    return {
        "metrics": scores,
        "cost": training_cost(history, peak.megabytes, device),
        "best": {"epoch": best_epoch, "monitor": monitor, "metrics": best_scores},
        "history": history,
        "steps": step,
        "resumed_from_epoch": saved["epoch"] if saved is not None else None,
        "warmup_steps": warmup,
        "optimizer_groups": describe_groups(optimizer),
        "train_seconds": time.perf_counter() - started,
        "device": str(device),
    }
