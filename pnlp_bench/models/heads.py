"""Task heads. A data set names its head, so the head, its loss and its metric travel together.

- `intent_slots` (MTOP, ATIS): a per-word Linear(B -> #BIO tags) for slot tagging, and an intent
  classifier over a masked attention-pooled sentence vector. The paper does not say how it predicts the
  intent; a pooled head beside the tagger is the natural reading, and exact match needs both.
- `classification` (IMDB, Hyperpartisan): attention pooling, as the paper. "channel" is the public
  code's per-channel softmax over positions of Linear(B->P)(X) weighting Linear(B->P)(X), then
  Linear(P->C), here with the padding masked out (the public code forgets the mask); "scalar" is
  pQRNN's one score per position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pnlp_bench.models.registry import HEADS

IGNORE = -100


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=dim)


class ScalarAttentionPool(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = masked_softmax(self.score(x).squeeze(-1), mask, dim=1)
        return torch.einsum("bs,bsd->bd", weights, x)


class ChannelAttentionPool(nn.Module):
    def __init__(self, dim: int, pooled: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, pooled)
        self.value = nn.Linear(dim, pooled)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = masked_softmax(self.score(x), mask.unsqueeze(-1), dim=1)
        return (weights * self.value(x)).sum(dim=1)


@dataclass
class IntentSlotConfig:
    pass


class IntentSlotHead(nn.Module):
    def __init__(self, dim: int, num_tags: int, num_intents: int) -> None:
        super().__init__()
        self.tagger = nn.Linear(dim, num_tags)
        self.pool = ScalarAttentionPool(dim)
        self.intent = nn.Linear(dim, num_intents)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"tag_logits": self.tagger(x), "intent_logits": self.intent(self.pool(x, mask))}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tag_logits = outputs["tag_logits"].float()
        tag_loss = F.cross_entropy(tag_logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORE)
        intent_loss = F.cross_entropy(outputs["intent_logits"].float(), batch["label"], ignore_index=IGNORE)
        return tag_loss + intent_loss

    def predict(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"tags": outputs["tag_logits"].argmax(-1), "label": outputs["intent_logits"].argmax(-1)}

    def paper_comparable_parameters(self) -> int:
        """The paper's counts cover the token head only (see docs); the intent head is reported apart."""
        return sum(p.numel() for p in self.tagger.parameters())


@dataclass
class ClassificationConfig:
    pooling: str = "channel"
    pooled_dim: int = 0


class ClassificationHead(nn.Module):
    def __init__(self, dim: int, num_labels: int, pooling: str = "channel", pooled_dim: int = 0) -> None:
        super().__init__()
        if pooling == "channel":
            pooled = pooled_dim or dim
            self.pool: nn.Module = ChannelAttentionPool(dim, pooled)
        elif pooling == "scalar":
            pooled = dim
            self.pool = ScalarAttentionPool(dim)
        else:
            raise ValueError(f"head.pooling must be channel or scalar, got {pooling!r}")
        self.classifier = nn.Linear(pooled, num_labels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.classifier(self.pool(x, mask))}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(outputs["logits"].float(), batch["label"], ignore_index=IGNORE)

    def predict(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"label": outputs["logits"].argmax(-1)}

    def paper_comparable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


@HEADS.register("intent_slots", IntentSlotConfig)
def build_intent_slots(config: IntentSlotConfig, dim: int, num_tags: int, num_labels: int) -> IntentSlotHead:
    return IntentSlotHead(dim, num_tags, num_labels)


@HEADS.register("classification", ClassificationConfig)
def build_classification(config: ClassificationConfig, dim: int, num_tags: int, num_labels: int) -> ClassificationHead:
    return ClassificationHead(dim, num_labels, config.pooling, config.pooled_dim)
