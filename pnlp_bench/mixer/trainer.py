"""A plain PyTorch training loop: train, evaluate on the eval split every epoch, keep the best checkpoint by
it, and evaluate the test split once at the end with that checkpoint (the test split never selects).

Runs never lose work: after every epoch `last.pt` holds everything needed to go on (weights, optimizer,
the shuffling generator, the best score so far, the history), written atomically. Started again with the
same config in the same run folder, training resumes after the last finished epoch, and on the CPU it ends
with exactly the metrics of an uninterrupted run (tests/test_resume.py kills a run with SIGKILL to check).

Off a terminal too, every epoch says where it stands: one `pnlp_bench.train` log line (Hydra puts it in the
run folder's `run.log`) and one line of `history.jsonl` (see core/run_log.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

from pnlp_bench.core.atomic import save_torch_atomic
from pnlp_bench.core.checkpoint import load_checkpoint, load_resumable, restore_rng, save_resumable
from pnlp_bench.core.run_log import ProgressLog, logging_above
from pnlp_bench.mixer.data.base import Example
from pnlp_bench.mixer.data.features import Featurized
from pnlp_bench.core.device import autocast_for, resolve_device
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.checks import check_optimiser_and_device
from pnlp_bench.mixer.distributed import Distributed, from_environment
from pnlp_bench.core.host import check_allocator, large_blocks_returned, prepare_host


@dataclass
class TrainerConfig:
    """`conf/trainer/default.yaml`: the paper's protocol (Adam, lr 5e-4, batch 256, 80 epochs) is these defaults."""

    epochs: int = 80
    batch_size: int = 256
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    eval_batch_size: int = 4096
    # Cap on rows x max_length per evaluation batch, so long inputs (IMDB S = 1024, Hyperpartisan 2048)
    # evaluate in batches of the memory a 4096 x 64 batch takes, instead of 16-32x more.
    eval_max_positions: int = 4096 * 64
    device: str = "auto"  # cuda when present, else cpu
    # bf16 autocast on cuda and on CPUs with native bf16 (avx512_bf16, amx_bf16), else fp32
    precision: str = "auto"
    num_threads: int = 0  # 0 = torch's default
    # How fast, not what: "auto" keeps the featurized splits and the word table resident on the device when
    # it is CUDA (batches are gathered there); torch.compile of the model's forward when `compile` is set.
    resident_data: str | bool = "auto"
    compile: bool = False
    # The host allocator (how fast, never what: see training/host.py): auto keeps freed memory in the
    # process when training on the CPU; system leaves glibc's defaults.
    host_allocator: str = "auto"

    def validate(self, where: str) -> None:
        check_allocator(self.host_allocator, where)
        check_optimiser_and_device(self, where)
        for key in ("epochs", "batch_size", "eval_batch_size", "eval_max_positions"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be >= 1, got {getattr(self, key)}")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ConfigError(f"{where}.precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.resident_data not in ("auto", True, False):
            raise ConfigError(f"{where}.resident_data must be auto, true or false, got {self.resident_data!r}")

    def budget(self) -> str:
        """How this budget compares with the paper's protocol, said in every record and table."""
        paper = self.epochs == 80 and self.batch_size == 256 and abs(self.lr - 5e-4) < 1e-12
        return f"{self.epochs} epochs, " + ("paper protocol" if paper else "reduced budget, not the paper protocol")

    def resolved_device(self, local_rank: int = 0) -> torch.device:
        return resolve_device(self.device, local_rank)


Scorer = Callable[[list[Example], dict[str, list]], dict]


def keeps_data_on_device(config: TrainerConfig, device: torch.device) -> bool:
    return device.type == "cuda" if config.resident_data == "auto" else bool(config.resident_data)


def make_optimizer(model: torch.nn.Module, config: TrainerConfig, device: torch.device) -> torch.optim.Optimizer:
    # On CUDA the fused kernel updates every parameter in a few launches; the CPU keeps torch's default
    # update, so CPU runs stay bit-identical to the runs recorded before this option existed.
    return torch.optim.Adam(
        model.parameters(),
        lr=config.lr,
        betas=tuple(config.betas),
        eps=config.eps,
        weight_decay=config.weight_decay,
        fused=True if device.type == "cuda" else None,
    )


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    config: TrainerConfig,
    device: torch.device,
    forward: torch.nn.Module | None = None,
) -> torch.Tensor:
    """One optimizer step; returns the detached loss without reading it, so the host never waits on the device.

    `forward` is what to call when it is not `model` itself (its DistributedDataParallel wrapper)."""
    with autocast_for(config.precision, device):
        outputs = (forward or model)(batch["features"], batch["mask"], batch.get("values"))
    loss = model.head.loss(outputs, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def predict(model: torch.nn.Module, data: Featurized, split: str, config: TrainerConfig, device: torch.device) -> dict:
    """Predictions of a split as label strings, the softmax probability of each predicted label, and tag
    strings per kept word (words past max_length get none)."""
    with large_blocks_returned():
        return _predict(model, data, split, config, device)


def _predict(model: torch.nn.Module, data: Featurized, split: str, config: TrainerConfig, device: torch.device) -> dict:
    model.eval()
    total = len(data.splits[split])
    seq_len = data.splits[split].word_ids.shape[1]
    batch_rows = max(1, min(config.eval_batch_size, config.eval_max_positions // seq_len))
    labels: list[str] = []
    probabilities: list[float] = []
    tags: list[list[str]] = []
    for start in range(0, total, batch_rows):
        rows = torch.arange(start, min(start + batch_rows, total), device=data.device)
        batch = data.batch(split, rows, device)
        with autocast_for(config.precision, device):
            outputs = model(batch["features"], batch["mask"], batch.get("values"))
        predicted = model.head.predict(outputs, batch["mask"])
        labels.extend(data.labels.labels[i] for i in predicted["label"].tolist())
        # one softmax over a few hundred labels per row: nothing beside the forward pass (predictions.jsonl keeps it)
        chosen = model.head.label_probabilities(outputs).gather(1, predicted["label"][:, None]).squeeze(1)
        probabilities.extend(chosen.tolist())
        if "tags" in predicted:
            lengths = batch["mask"].sum(1).tolist()
            for row, length in zip(predicted["tags"].tolist(), lengths):
                tags.append([data.labels.tags[i] for i in row[:length]])
    model.train()
    return {"labels": labels, "tags": tags, "probabilities": probabilities}


def train(
    model: torch.nn.Module,
    data: Featurized,
    examples: dict[str, list[Example]],
    score: Scorer,
    monitor: str,
    config: TrainerConfig,
    run_dir: Path,
    seed: int,
    checkpoint_extra: dict[str, Any],
    quiet: bool = False,
    identity: dict[str, str] | None = None,
    resume: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    monitor_language: str | None = None,
) -> dict[str, Any]:
    ranks = from_environment(config.resolved_device().type)
    device = config.resolved_device(ranks.local_rank)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    prepare_host(config.host_allocator, device.type)
    model.to(device)
    if keeps_data_on_device(config, device):
        data = data.to(device)
    if config.compile:
        model.compile()  # in place: the state dict keeps its keys, so checkpoints load into plain models
    forward = torch.nn.parallel.DistributedDataParallel(model) if ranks.enabled else model
    optimizer = make_optimizer(model, config, device)
    generator = torch.Generator().manual_seed(seed)
    train_size = len(data.splits["train"])
    best_path, last_path = run_dir / "best.pt", run_dir / "last.pt"
    best_value, best_epoch, first_epoch = float("-inf"), 0, 1
    history: list[dict[str, Any]] = []
    identity = identity or {}
    # the last checkpoint when it belongs to this very config and code (core/checkpoint.py); a damaged one
    # stops the run with one line; one written before the shared helper resumes too, without random states
    state = load_resumable(last_path, identity, accept_unversioned=True) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        best_value, best_epoch, history = state["best_value"], state["best_epoch"], state["history"]
        first_epoch = state["epoch"] + 1
        if "rng" in state:
            restore_rng(state["rng"])  # dropout's draws, as the uninterrupted run would make them
    started = time.perf_counter()
    progress_log = ProgressLog(run_dir if ranks.is_main else None, config.epochs)
    history = progress_log.start(history)
    columns = [
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()
    ]
    with logging_above(Progress(*columns, disable=quiet, transient=True)) as progress:
        epochs_task = progress.add_task("epochs", total=config.epochs, completed=first_epoch - 1)
        batches_task = progress.add_task("batches", total=(train_size + config.batch_size - 1) // config.batch_size)
        for epoch in range(first_epoch, config.epochs + 1):
            epoch_started = time.perf_counter()
            progress.reset(batches_task)
            order = torch.randperm(train_size, generator=generator).to(data.device)
            # Summed on the device in float64 (the same additions as Python floats) and read once per epoch.
            loss_total, steps = torch.zeros((), dtype=torch.float64, device=device), 0
            gather_seconds = 0.0  # gathering batches from the featurized splits (host time; asynchronous on CUDA)
            for start in range(0, train_size, config.batch_size):
                gather_started = time.perf_counter()
                batch = data.batch("train", ranks.shard(order[start : start + config.batch_size]), device)
                gather_seconds += time.perf_counter() - gather_started
                loss_total += train_step(model, optimizer, batch, config, device, forward).double()
                steps += 1
                progress.advance(batches_task)
            loss_sum = loss_total.item()
            train_seconds = time.perf_counter() - epoch_started
            eval_started = time.perf_counter()
            eval_scores = score(examples["eval"], predict(model, data, "eval", config, device))
            eval_seconds = time.perf_counter() - eval_started
            value = eval_scores[monitor_language or "avg"][monitor]
            checkpoint_started = time.perf_counter()
            improved = value > best_value
            if improved:
                best_value, best_epoch = value, epoch
            if improved and ranks.is_main:
                save_torch_atomic(
                    best_path,
                    {"model": model.state_dict(), "epoch": epoch, "monitor": monitor, "value": value, **checkpoint_extra},
                )
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / max(steps, 1),
                    f"eval_{monitor}": value,
                    "train_seconds": train_seconds,
                    "eval_seconds": eval_seconds,  # prediction and scoring of the eval split
                    "gather_seconds": gather_seconds,  # part of train_seconds
                    "samples_per_second": train_size / train_seconds,
                }
            )
            if ranks.is_main:
                save_resumable(
                    last_path,
                    identity,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "epoch": epoch,
                        "best_value": best_value,
                        "best_epoch": best_epoch,
                        "history": history,
                    },
                )
            history[-1]["checkpoint_seconds"] = time.perf_counter() - checkpoint_started  # best.pt and last.pt
            # after last.pt: a line in history.jsonl is never ahead of the checkpoint a resume starts from
            progress_log.record(
                history[-1],
                f"train loss {history[-1]['train_loss']:.4f}, eval {monitor} {value:.2f} (best {best_value:.2f}, "
                f"epoch {best_epoch}), {history[-1]['samples_per_second']:,.0f} samples/s",
            )
            ranks.barrier()
            if on_epoch is not None:
                on_epoch(history[-1])
            progress.update(epochs_task, advance=1, description=f"epoch {epoch}: eval {monitor} {value:.2f}")
    train_wall = time.perf_counter() - started
    best = load_checkpoint(best_path, f"delete it and {last_path.name} to train this run again", map_location=device)
    model.load_state_dict(best["model"])
    # the pass that scores the best checkpoint also hands its predictions back (predictions.jsonl: mixer/predictions.py)
    predictions = {split: predict(model, data, split, config, device) for split in ("eval", "test")}
    final = {split: score(examples[split], predicted) for split, predicted in predictions.items()}
    return {
        "metrics": final,
        "predictions": predictions,
        "world_size": ranks.world_size,
        "is_main": ranks.is_main,
        "resumed_from_epoch": first_epoch - 1 if state is not None else None,
        "best_epoch": best_epoch,
        "monitor": monitor,
        "monitor_language": monitor_language or "avg",
        "history": history,
        "train_seconds": train_wall,
        "device": str(device),
        "trainer": asdict(config),
    }
