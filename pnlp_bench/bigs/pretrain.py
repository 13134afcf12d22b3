"""Masked-LM pretraining of a BiGS-family encoder.

Data: the corpus's documents are tokenized, joined into one stream per split and cut into blocks of
``[CLS] + (max_length - 2) tokens + [SEP]`` (documents run across block boundaries, as Hugging Face's
`run_mlm` groups texts; the remainder shorter than a block is dropped and counted). Tokenized blocks are
cached under the cache directory, keyed by a digest of the documents, the vocabulary and the length.

Training: masking is drawn afresh for every batch (`masking.py`); the loss is the cross-entropy at the
masked positions only, and the vocabulary projection is computed there only (`masked_lm_loss`). AdamW with
warm-up then cosine (or linear) decay, gradient clipping, bf16 autocast on CUDA. The dev split is scored
with one fixed masking (same seed every evaluation), so its numbers are comparable across steps and runs.

Checkpoints: `last.pt` (model, optimizer, schedule, step, data order, the masking generator and the global
RNG states, through `pnlp_bench/core/checkpoint.py`) every `trainer.checkpoint_every` steps and at the end; a
run folder holding a `last.pt` of the same identity (config hash and code version) resumes from it
(`resume=true`, the default, as for every run). `best.pt` holds the weights with the lowest dev loss.
Snapshots: at each of `trainer.snapshot_steps` the dev split is scored and the weights are kept in
`snapshots/step_<N>.pt`, so one pretraining gives several budgets (the record lists them with their dev scores;
a fine-tune starts from one with `init=run:<config hash>@<N>`).
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pnlp_bench.bigs.config import BiGSTrainerConfig
from pnlp_bench.bigs.finetune import device_for
from pnlp_bench.bigs.masking import IGNORE_INDEX, mask_tokens
from pnlp_bench.bigs.optim import build_optimizer, build_schedule, describe_groups
from pnlp_bench.bigs.tokenization import Vocabulary, tokenize, vocab_digest
from pnlp_bench.core.atomic import save_torch_atomic
from pnlp_bench.core.checkpoint import load_resumable, restore_rng, save_resumable
from pnlp_bench.core.run_log import ProgressLog, logging_above
from pnlp_bench.bigs.data.text_tasks import TextExample
from pnlp_bench.bigs.model import BiGSForMaskedLM
from pnlp_bench.core.paths import cache_dir
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.device import autocast_for

BLOCK_RULE_VERSION = 1
DEV_MASK_SEED = 12_345
SNAPSHOTS = "snapshots"


def snapshot_path(run_dir: Path, step: int) -> Path:
    """Where a pretraining keeps its weights at `step` (trainer.snapshot_steps)."""
    return run_dir / SNAPSHOTS / f"step_{step}.pt"


def build_blocks(documents: list[TextExample], max_length: int, vocab: Vocabulary, vocab_path: str) -> tuple[torch.Tensor, dict]:
    """[n_blocks, max_length] int32 blocks of the joined token stream, and what was counted."""
    digest = hashlib.sha256(f"v{BLOCK_RULE_VERSION}:{max_length}:{vocab_digest(vocab_path)}".encode())
    for document in documents:
        digest.update(document.text.encode())
        digest.update(b"\n")
    path = cache_dir() / "mlm_blocks" / f"{digest.hexdigest()[:20]}.pt"
    if path.exists():
        cached = torch.load(path, weights_only=True)
        return cached["blocks"], cached["report"]
    stream = torch.tensor([token for ids in tokenize([d.text for d in documents], vocab_path) for token in ids], dtype=torch.int32)
    content = max_length - 2
    count = stream.numel() // content
    body = stream[: count * content].view(count, content)
    blocks = torch.cat(
        [torch.full((count, 1), vocab.cls, dtype=torch.int32), body, torch.full((count, 1), vocab.sep, dtype=torch.int32)], dim=1
    )
    report = {"documents": len(documents), "tokens": int(stream.numel()), "blocks": count, "tokens_dropped": int(stream.numel() - count * content)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomic(path, {"blocks": blocks, "report": report})
    return blocks, report


def masked_lm_loss(model: BiGSForMaskedLM, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, int, int]:
    """(mean cross-entropy over the masked positions, their number, how many were predicted right).

    Only the masked positions go through the vocabulary projection: with 15% masked that is most of the
    MLM head's cost saved, and it makes plain that no other position can contribute to the loss.
    """
    hidden = model.backbone(input_ids, attention_mask)
    selected = labels != IGNORE_INDEX
    logits = model.mlm_head(hidden[selected], model.backbone.embeddings.word_embeddings.weight).float()
    targets = labels[selected]
    if targets.numel() == 0:
        return logits.sum() * 0.0, 0, 0
    loss = F.cross_entropy(logits, targets)
    return loss, int(targets.numel()), int((logits.argmax(-1) == targets).sum())


def dev_batch_size(config: BiGSTrainerConfig, length: int) -> int:
    """Blocks per dev batch; the fixed dev masking is drawn batch by batch, so its positions follow it too."""
    return max(1, min(config.eval_batch_size, config.eval_max_positions // length))


@torch.no_grad()
def evaluate_mlm(model: BiGSForMaskedLM, blocks: torch.Tensor, vocab: Vocabulary, config: BiGSTrainerConfig, device: torch.device) -> dict:
    model.eval()
    generator = torch.Generator().manual_seed(DEV_MASK_SEED)
    size = dev_batch_size(config, blocks.shape[1])
    loss_sum, masked, correct = 0.0, 0, 0
    for start in range(0, blocks.shape[0], size):
        ids = blocks[start : start + size].long()
        inputs, labels = mask_tokens(ids, vocab, generator, config.mlm_probability, config.max_predictions)
        with autocast_for(config.precision, device):
            loss, count, hits = masked_lm_loss(model, inputs.to(device), labels.to(device))
        loss_sum, masked, correct = loss_sum + loss.item() * count, masked + count, correct + hits
    model.train()
    mean = loss_sum / max(masked, 1)
    return {"mlm_loss": mean, "mlm_accuracy": 100.0 * correct / max(masked, 1), "perplexity": math.exp(min(mean, 50.0)), "masked_tokens": masked}


def pretrain(
    model: BiGSForMaskedLM,
    blocks: dict[str, torch.Tensor],
    vocab: Vocabulary,
    config: BiGSTrainerConfig,
    run_dir: Path,
    seed: int,
    checkpoint_extra: dict[str, Any],
    quiet: bool = False,
    console=None,
    resume: bool = True,
    identity: dict[str, str] | None = None,
) -> dict[str, Any]:
    device = device_for(config)
    model.to(device)
    if config.resident_on(device):  # one copy to the device instead of one per batch
        blocks = {split: tensor.to(device) for split, tensor in blocks.items()}
    train = blocks["train"]
    sequences_per_step = config.batch_size * config.grad_accumulation
    if sequences_per_step > train.shape[0]:
        raise ConfigError(
            f"a step takes trainer.batch_size x grad_accumulation = {sequences_per_step} blocks but the corpus has "
            f"{train.shape[0]} blocks of {train.shape[1]} tokens; lower trainer.batch_size or raise data.train_limit"
        )
    if blocks["eval"].shape[0] == 0:
        raise ConfigError("the eval (dev) split is shorter than one block; raise data.eval_limit or lower data.max_length")
    steps_per_epoch = max(1, train.shape[0] // sequences_per_step)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    optimizer = build_optimizer(model, config)
    warmup = config.warmup_for(total_steps)
    schedule = build_schedule(optimizer, warmup, total_steps, config.schedule)
    generator = torch.Generator().manual_seed(seed)
    state = {"step": 0, "epoch": 0, "position": 0, "order": torch.randperm(train.shape[0], generator=generator)}
    history: list[dict] = []
    snapshots: list[dict] = []  # one entry per snapshot written: step, tokens seen, dev scores, file
    snapshot_at = set(config.snapshot_steps)
    best_loss = float("inf")
    last_path = run_dir / "last.pt"
    identity = identity or {}
    resumed_from = None
    saved = load_resumable(last_path, identity) if resume else None
    # a finished last.pt is resumed too (killed before its record was written): only the final evaluation reruns
    if saved is not None and saved.get("total_steps") == total_steps:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generator"])
        state = {key: saved[key] for key in ("step", "epoch", "position", "order")}
        history, best_loss, resumed_from = saved["history"], saved["best_loss"], int(saved["step"])
        snapshots = saved.get("snapshots", [])
        restore_rng(saved["rng"])  # dropout's draws, as the uninterrupted run would make them
        if console is not None:
            console.print(f"resuming from {last_path} at step {resumed_from:,}")

    def save_last(finished: bool) -> None:
        save_resumable(
            last_path,
            identity,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
                **state,
                "total_steps": total_steps,
                "history": history,
                "snapshots": snapshots,
                "best_loss": best_loss,
                "finished": finished,
                **checkpoint_extra,
            },
        )

    def evaluate(train_loss: float, tokens_per_second: float) -> dict:
        nonlocal best_loss
        scores = evaluate_mlm(model, blocks["eval"], vocab, config, device)
        if scores["mlm_loss"] < best_loss:
            best_loss = scores["mlm_loss"]
            save_torch_atomic(run_dir / "best.pt", {"model": model.state_dict(), "step": state["step"], **checkpoint_extra})
        row = {"step": state["step"], "epoch": state["epoch"], "train_loss": train_loss, **{f"eval_{k}": v for k, v in scores.items()},
               "lr": schedule.get_last_lr()[0], "tokens_per_second": tokens_per_second}
        history.append(row)
        # Rows after the last `checkpoint_every` save are recomputed on resume; `start` then drops them from
        # the file with the checkpoint's history, so no step appears twice.
        progress_log.record(
            row,
            f"train loss {train_loss:.4f}, eval mlm_loss {scores['mlm_loss']:.4f} (best {best_loss:.4f}), "
            f"eval mlm_accuracy {scores['mlm_accuracy']:.2f}, {tokens_per_second:,.0f} tokens/s",
        )
        return scores

    def save_snapshot(scores: dict) -> None:
        path = snapshot_path(run_dir, state["step"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = state["step"] * sequences_per_step * length
        save_torch_atomic(path, {"model": model.state_dict(), "step": state["step"], "tokens_seen": tokens, "eval": scores, **checkpoint_extra})
        snapshots.append({"step": state["step"], "tokens_seen": tokens, **scores, "file": str(path.relative_to(run_dir))})

    length = train.shape[1]
    loss_sum, loss_steps, window_started, window_tokens = 0.0, 0, time.perf_counter(), 0
    started = time.perf_counter()
    scores = None
    progress_log = ProgressLog(run_dir, total_steps, unit="step")
    history = progress_log.start(history)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with logging_above(Progress(*columns, disable=quiet, transient=True)) as progress:
        steps_task = progress.add_task("pretraining", total=total_steps, completed=state["step"])
        while state["step"] < total_steps:
            if state["position"] + sequences_per_step > train.shape[0]:  # a new epoch: reshuffle
                state.update(epoch=state["epoch"] + 1, position=0, order=torch.randperm(train.shape[0], generator=generator))
            step_loss = 0.0
            for micro in range(config.grad_accumulation):
                start = state["position"] + micro * config.batch_size
                ids = train[state["order"][start : start + config.batch_size].to(train.device)].long()
                inputs, labels = mask_tokens(ids, vocab, generator, config.mlm_probability, config.max_predictions)
                with autocast_for(config.precision, device):
                    loss, _, _ = masked_lm_loss(model, inputs.to(device), labels.to(device))
                (loss / config.grad_accumulation).backward()
                step_loss += loss.item() / config.grad_accumulation
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            state["position"] += sequences_per_step
            state["step"] += 1
            loss_sum, loss_steps, window_tokens = loss_sum + step_loss, loss_steps + 1, window_tokens + sequences_per_step * length
            progress.update(steps_task, advance=1, description=f"pretraining (loss {step_loss:.3f})")
            at_end = state["step"] == total_steps
            at_snapshot = state["step"] in snapshot_at
            if at_end or at_snapshot or (config.eval_every and state["step"] % config.eval_every == 0):
                elapsed = time.perf_counter() - window_started
                scores = evaluate(loss_sum / loss_steps, window_tokens / max(elapsed, 1e-9))
                loss_sum, loss_steps, window_started, window_tokens = 0.0, 0, time.perf_counter(), 0
                if at_snapshot:
                    save_snapshot(scores)
            if not at_end and config.checkpoint_every and state["step"] % config.checkpoint_every == 0:
                save_last(finished=False)
    if scores is None:  # resumed from a checkpoint written after the last step
        scores = evaluate_mlm(model, blocks["eval"], vocab, config, device)
    save_last(finished=True)
    return {
        "metrics": {"eval": scores},
        "best": {"monitor": "mlm_loss", "mlm_loss": best_loss},
        "history": history,
        "snapshots": snapshots,
        "steps": total_steps,
        "tokens_seen": total_steps * sequences_per_step * length,
        "resumed_from_step": resumed_from,
        "warmup_steps": warmup,
        "optimizer_groups": describe_groups(optimizer),
        "train_seconds": time.perf_counter() - started,
        "device": str(device),
    }
