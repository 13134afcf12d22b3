"""A plain PyTorch training loop: train, evaluate on the eval split every epoch, keep the best checkpoint by
it, and evaluate the test split once at the end with that checkpoint (the test split never selects)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pnlp_bench.data.base import Example
from pnlp_bench.data.features import Featurized
from pnlp_bench.registry import ConfigError


@dataclass
class TrainerConfig:
    epochs: int = 80
    batch_size: int = 256
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    eval_batch_size: int = 4096
    # Cap on rows x max_words per evaluation batch, so long inputs (IMDB S = 1024, Hyperpartisan 2048)
    # evaluate in batches of the memory a 4096 x 64 batch takes, instead of 16-32x more.
    eval_max_positions: int = 4096 * 64
    device: str = "auto"
    precision: str = "auto"
    num_threads: int = 0

    def validate(self, where: str) -> None:
        if self.epochs < 1:
            raise ConfigError(f"{where}.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"{where}.batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ConfigError(f"{where}.precision must be auto, fp32 or bf16, got {self.precision!r}")

    def budget(self) -> str:
        """How this budget compares with the paper's protocol, said in every record and table."""
        paper = self.epochs == 80 and self.batch_size == 256 and abs(self.lr - 5e-4) < 1e-12
        return f"{self.epochs} epochs, " + ("paper protocol" if paper else "reduced budget, not the paper protocol")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


Scorer = Callable[[list[Example], dict[str, list]], dict]


def autocast_for(config: TrainerConfig, device: torch.device):
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


@torch.no_grad()
def predict(model: torch.nn.Module, data: Featurized, split: str, config: TrainerConfig, device: torch.device) -> dict:
    """Predictions of a split as label strings (and tag strings per word, truncated words tagged O)."""
    model.eval()
    total = len(data.splits[split])
    seq_len = data.splits[split].word_ids.shape[1]
    batch_rows = max(1, min(config.eval_batch_size, config.eval_max_positions // seq_len))
    labels: list[str] = []
    tags: list[list[str]] = []
    for start in range(0, total, batch_rows):
        rows = torch.arange(start, min(start + batch_rows, total))
        batch = data.batch(split, rows, device)
        with autocast_for(config, device):
            outputs = model(batch["features"], batch["mask"], batch.get("values"))
        predicted = model.head.predict(outputs)
        labels.extend(data.labels.labels[i] for i in predicted["label"].tolist())
        if "tags" in predicted:
            lengths = batch["mask"].sum(1).tolist()
            for row, length in zip(predicted["tags"].tolist(), lengths):
                tags.append([data.labels.tags[i] for i in row[:length]])
    model.train()
    return {"labels": labels, "tags": tags}


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, partial)
    partial.replace(path)


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
) -> dict[str, Any]:
    device = config.resolved_device()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=tuple(config.betas), eps=config.eps, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    train_size = len(data.splits["train"])
    best_path = run_dir / "best.pt"
    best_value, best_epoch = float("-inf"), 0
    history = []
    started = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, disable=quiet, transient=True) as progress:
        epochs_task = progress.add_task("epochs", total=config.epochs)
        batches_task = progress.add_task("batches", total=(train_size + config.batch_size - 1) // config.batch_size)
        for epoch in range(1, config.epochs + 1):
            epoch_started = time.perf_counter()
            progress.reset(batches_task)
            order = torch.randperm(train_size, generator=generator)
            loss_sum, steps = 0.0, 0
            for start in range(0, train_size, config.batch_size):
                batch = data.batch("train", order[start : start + config.batch_size], device)
                with autocast_for(config, device):
                    outputs = model(batch["features"], batch["mask"], batch.get("values"))
                loss = model.head.loss(outputs, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item()
                steps += 1
                progress.advance(batches_task)
            train_seconds = time.perf_counter() - epoch_started
            eval_scores = score(examples["eval"], predict(model, data, "eval", config, device))
            value = eval_scores["avg"][monitor]
            improved = value > best_value
            if improved:
                best_value, best_epoch = value, epoch
                save_atomic(
                    {"model": model.state_dict(), "epoch": epoch, "monitor": monitor, "value": value, **checkpoint_extra},
                    best_path,
                )
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / max(steps, 1),
                    f"eval_{monitor}": value,
                    "train_seconds": train_seconds,
                    "samples_per_second": train_size / train_seconds,
                }
            )
            progress.update(epochs_task, advance=1, description=f"epoch {epoch}: eval {monitor} {value:.2f}")
    train_wall = time.perf_counter() - started
    best = torch.load(best_path, map_location=device, weights_only=True)
    model.load_state_dict(best["model"])
    final = {split: score(examples[split], predict(model, data, split, config, device)) for split in ("eval", "test")}
    return {
        "metrics": final,
        "best_epoch": best_epoch,
        "monitor": monitor,
        "history": history,
        "train_seconds": train_wall,
        "device": str(device),
        "trainer": asdict(config),
    }
