"""An independent control for the fidelity study: a textbook BiLSTM tagger, outside the project's model code.

    python tools/control_bilstm.py mtop|atis [--epochs 15] [--output results/control_bilstm.json]

Trainable word embeddings (every training word, with 10% of training words replaced by an unknown-word
token), dropout 0.3, one bidirectional LSTM layer of 256 per direction, a per-word tag classifier and a
max-pooled intent classifier, Adam at lr 1e-3, batch 64. It shares only the data readers and the metric
with `bench run`, so it tells whether a number is a property of the data and the metric (a plain tagger
lands there too) or of the project's pipeline. Scores the last epoch on the eval and test splits (English)
and appends one JSON record with provenance per call to the output file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pnlp_bench.mixer.data import atis, mtop
from pnlp_bench.mixer.metrics import intent_slot_scores
from pnlp_bench.core.paths import data_dir_candidates
from pnlp_bench.core.provenance import provenance

UNKNOWN, PADDING = 1, 0


def splits_of(name: str) -> dict[str, list]:
    for base in data_dir_candidates():
        if name == "mtop" and (base / "mtop/full/en").is_dir():
            report = {"rows_with_overlapping_slots": 0, "rows_with_slots_off_token_boundaries": 0}
            root = base / "mtop/full"
            return {split: mtop.read_split(mtop.split_path(root, "en", split), "en", report) for split in ("train", "eval", "test")}
        if name == "atis" and (base / "multiatis/atis_en_jointbert/train").is_dir():
            root = base / "multiatis/atis_en_jointbert"
            return {split: atis.read_split(root / folder) for split, folder in (("train", "train"), ("eval", "dev"), ("test", "test"))}
    raise SystemExit(f"no {name} data under {', '.join(map(str, data_dir_candidates()))}")


class Tagger(nn.Module):
    def __init__(self, words: int, tags: int, intents: int, width: int = 256, dropout: float = 0.3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(words, width, padding_idx=PADDING)
        self.lstm = nn.LSTM(width, width, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.tagger = nn.Linear(2 * width, tags)
        self.intent = nn.Linear(2 * width, intents)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.lstm(self.dropout(self.embedding(ids)))
        states = self.dropout(states)
        pooled = states.masked_fill((ids == PADDING)[..., None], -1e4).max(dim=1).values
        return self.tagger(states), self.intent(pooled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=["mtop", "atis"])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("results/control_bilstm.json"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    splits = splits_of(args.data)
    vocabulary = {"<pad>": PADDING, "<unk>": UNKNOWN}
    for example in splits["train"]:
        for word in example.words:
            vocabulary.setdefault(word, len(vocabulary))
    tags = sorted({tag for example in splits["train"] for tag in example.tags})
    intents = sorted({example.label for example in splits["train"]})
    tag_index, intent_index = {t: i for i, t in enumerate(tags)}, {t: i for i, t in enumerate(intents)}

    def tensors(examples: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        length = max(len(example.words) for example in examples)
        ids = torch.zeros(len(examples), length, dtype=torch.long)
        gold = torch.full((len(examples), length), -100)
        for row, example in enumerate(examples):
            ids[row, : len(example.words)] = torch.tensor([vocabulary.get(w, UNKNOWN) for w in example.words])
            gold[row, : len(example.words)] = torch.tensor([tag_index.get(t, -100) for t in example.tags])
        return ids, gold, torch.tensor([intent_index.get(example.label, -100) for example in examples])

    train_ids, train_tags, train_intents = tensors(splits["train"])
    model = Tagger(len(vocabulary), len(tags), len(intents))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in torch.randperm(len(train_ids)).split(64):
            ids = train_ids[batch]
            ids = torch.where((torch.rand(ids.shape) < 0.1) & (ids != PADDING), UNKNOWN, ids)
            tag_logits, intent_logits = model(ids)
            loss = F.cross_entropy(tag_logits.flatten(0, 1), train_tags[batch].flatten()) + F.cross_entropy(
                intent_logits, train_intents[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} done", flush=True)
    model.eval()
    metrics = {}
    for split in ("eval", "test"):
        ids, _, _ = tensors(splits[split])
        with torch.no_grad():
            tag_logits, intent_logits = model(ids)
        labels = [intents[i] for i in intent_logits.argmax(-1).tolist()]
        predicted = [[tags[i] for i in row[: len(e.words)]] for row, e in zip(tag_logits.argmax(-1).tolist(), splits[split])]
        metrics[split] = intent_slot_scores(splits[split], labels, predicted)
    record = {
        "tool": "tools/control_bilstm.py", "data": args.data, "language": "en", "epochs": args.epochs, "seed": args.seed,
        "metrics": metrics, "train_seconds": time.perf_counter() - started,
        "provenance": provenance(torch.device("cpu")), "date": datetime.date.today().isoformat(),
    }
    previous = json.loads(args.output.read_text()) if args.output.exists() else []
    args.output.write_text(json.dumps([*previous, record], indent=1) + "\n")
    print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
