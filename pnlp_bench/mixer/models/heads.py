"""Task heads. A data set names its head, so the head, its loss and its metric travel together.

- `intent_slots` (MTOP, ATIS): a per-word Linear(B -> #BIO tags) for slot tagging, and an intent
  classifier over a masked attention-pooled sentence vector. The paper does not say how it predicts the
  intent; a pooled head beside the tagger is the natural reading, and exact match needs both.
  Decoding (`data.head_options.decode`, the paper says nothing of it): `argmax` takes each word's best tag
  on its own; `viterbi` takes the best BIO-consistent sequence under the per-word log-probabilities, so an
  I-X tag follows only a B-X or I-X (a deterministic search over the allowed transitions, no trained CRF).
  The MTOP and ATIS data configs choose `viterbi` (it adds 5.6 points of eval exact match to BASE on MTOP English,
  results/fidelity.md); the dataclass default stays `argmax`, the plain reading of "a per-token linear layer".
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

from pnlp_bench.mixer.models.registry import HEADS
from pnlp_bench.core.registry import ConfigError

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


DECODERS = ("argmax", "viterbi")
# Transitions that BIO forbids get this score rather than -inf, so a row of forbidden moves never yields NaN.
FORBIDDEN = -1e9
# Rows per Viterbi pass: the longest row of a pass bounds the positions it visits (the dense reference
# `viterbi_decode` holds a [rows, tags, tags] tensor per step: 512 x 151 x 151 floats = 47 MB).
VITERBI_ROWS = 512


@dataclass
class IntentSlotConfig:
    decode: str = "argmax"

    def validate(self, where: str) -> None:
        if self.decode not in DECODERS:
            raise ConfigError(f"{where}.decode must be one of {', '.join(DECODERS)}, got {self.decode!r}")


def bio_transitions(tag_names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(start [T], transitions [T, T]) scores: 0 where BIO allows the tag (after the previous one), FORBIDDEN
    where it does not. I-X may start nothing and may follow only B-X or I-X; every other tag goes anywhere."""
    count = len(tag_names)
    start = torch.zeros(count)
    transitions = torch.zeros(count, count)
    for current, name in enumerate(tag_names):
        if not name.startswith("I-"):
            continue
        kind = name[2:]
        start[current] = FORBIDDEN
        allowed = torch.tensor([previous in (f"B-{kind}", f"I-{kind}") for previous in tag_names])
        transitions[:, current] = torch.where(allowed, 0.0, FORBIDDEN)
    return start, transitions


def viterbi_decode(
    scores: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor
) -> torch.Tensor:
    """The highest-scoring tag sequence [B, S] under per-position `scores` [B, S, T] (log-probabilities) and
    the transition scores; positions where `mask` is False (padding, always after the words) get tag 0 and
    do not influence the words' tags. Any transition scores, O(T^2) per position: the reference that
    `bio_viterbi_decode`, which the head runs, is tested against."""
    batch, length, count = scores.shape
    best = scores[:, 0] + start
    pointers = []
    for position in range(1, length):
        candidates = best[:, :, None] + transitions[None]  # [B, previous, current]
        value, pointer = candidates.max(dim=1)
        live = mask[:, position, None]
        best = torch.where(live, value + scores[:, position], best)
        # At padding the path stays on the tag it ended on, so backtracking through it is the identity.
        pointers.append(torch.where(live, pointer, torch.arange(count, device=scores.device)[None]))
    tags = torch.empty(batch, length, dtype=torch.long, device=scores.device)
    tags[:, -1] = best.argmax(-1)
    for position in range(length - 1, 0, -1):
        tags[:, position - 1] = pointers[position - 1].gather(1, tags[:, position, None]).squeeze(1)
    return tags.masked_fill(~mask, 0)


def bio_structure(tag_names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(inside [K], begin [K]): the index of each I-X tag and of the tag it may continue besides itself (its
    B-X; the I-X tag itself when the label space has no B-X)."""
    index = {name: position for position, name in enumerate(tag_names)}
    inside = [position for position, name in enumerate(tag_names) if name.startswith("I-")]
    begin = [index.get(f"B-{tag_names[position][2:]}", position) for position in inside]
    return torch.tensor(inside, dtype=torch.long), torch.tensor(begin, dtype=torch.long)


def bio_viterbi_decode(
    scores: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, inside: torch.Tensor, begin: torch.Tensor
) -> torch.Tensor:
    """`viterbi_decode` under the BIO transitions of `bio_transitions`, in O(T) per position instead of O(T^2):
    every tag but I-X may follow any tag, so its best predecessor is the row's best tag; I-X takes the better
    of B-X and I-X, or the best tag at the FORBIDDEN score, exactly the maximum the dense search takes.
    Only positions up to the longest row are visited."""
    batch, length, count = scores.shape
    tags = torch.zeros(batch, length, dtype=torch.long, device=scores.device)
    used = int(mask.sum(dim=1).max()) if batch else 0
    if used == 0:
        return tags
    inside, begin = inside.to(scores.device), begin.to(scores.device)
    every = torch.arange(count, device=scores.device)[None]
    best = scores[:, 0] + start
    pointers = []
    for position in range(1, used):
        top, top_index = best.max(dim=1, keepdim=True)  # [B, 1]
        value, pointer = top.expand(batch, count).clone(), top_index.expand(batch, count).clone()
        from_begin, from_inside = best[:, begin], best[:, inside]
        allowed = torch.maximum(from_begin, from_inside)
        allowed_index = torch.where(from_begin >= from_inside, begin, inside)
        forbidden = top + FORBIDDEN
        keep = allowed >= forbidden
        value[:, inside] = torch.where(keep, allowed, forbidden)
        pointer[:, inside] = torch.where(keep, allowed_index, top_index)
        live = mask[:, position, None]
        best = torch.where(live, value + scores[:, position], best)
        pointers.append(torch.where(live, pointer, every))
    tags[:, used - 1] = best.argmax(-1)
    for position in range(used - 1, 0, -1):
        tags[:, position - 1] = pointers[position - 1].gather(1, tags[:, position, None]).squeeze(1)
    return tags.masked_fill(~mask, 0)


class IntentSlotHead(nn.Module):
    def __init__(self, dim: int, num_tags: int, num_intents: int, decode: str = "argmax", tag_names: list[str] | None = None) -> None:
        super().__init__()
        self.tagger = nn.Linear(dim, num_tags)
        self.pool = ScalarAttentionPool(dim)
        self.intent = nn.Linear(dim, num_intents)
        self.decode = decode
        if decode == "viterbi":
            if tag_names is None or len(tag_names) != num_tags:
                raise ConfigError("data.head_options.decode=viterbi needs the tag names of the label space")
            start, _ = bio_transitions(tag_names)
            # Not persistent: they follow from the label space, and checkpoints stay loadable by either decoder.
            self.register_buffer("start_scores", start, persistent=False)
            inside, begin = bio_structure(tag_names)
            self.register_buffer("inside_tags", inside, persistent=False)
            self.register_buffer("inside_begins", begin, persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """x may hold fewer positions than the mask (a padding-aware backbone's trimmed output: positions past
        it have no word in any row); the tag logits there are the tagger's bias, the logits of a zero vector."""
        used = x.shape[1]
        tag_logits = self.tagger(x)
        if used < mask.shape[1]:
            rest = self.tagger.bias.to(tag_logits.dtype).expand(x.shape[0], mask.shape[1] - used, -1)
            tag_logits = torch.cat([tag_logits, rest], dim=1)
        return {"tag_logits": tag_logits, "intent_logits": self.intent(self.pool(x, mask[:, :used]))}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tag_logits = outputs["tag_logits"].float()
        tag_loss = F.cross_entropy(tag_logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORE)
        intent_loss = F.cross_entropy(outputs["intent_logits"].float(), batch["label"], ignore_index=IGNORE)
        return tag_loss + intent_loss

    def predict(self, outputs: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Labels and tags; `mask` [B, S] marks the word positions (None: every position is a word)."""
        tag_logits = outputs["tag_logits"]
        label = outputs["intent_logits"].argmax(-1)
        if self.decode == "argmax":
            return {"tags": tag_logits.argmax(-1), "label": label}
        scores = F.log_softmax(tag_logits.float(), dim=-1)
        if mask is None:
            mask = torch.ones(scores.shape[:2], dtype=torch.bool, device=scores.device)
        tags = torch.cat(
            [
                bio_viterbi_decode(scores[rows], mask[rows], self.start_scores, self.inside_tags, self.inside_begins)
                for rows in torch.arange(scores.shape[0], device=scores.device).split(VITERBI_ROWS)
            ]
        ) if scores.shape[0] else scores.argmax(-1)
        return {"tags": tags, "label": label}

    def label_probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, intents]: the softmax of the intent logits (the probability `bench predict` reports)."""
        return torch.softmax(outputs["intent_logits"].float(), dim=-1)

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
        # x may be a padding-aware backbone's trimmed output: the mask's first x.shape[1] positions cover it
        return {"logits": self.classifier(self.pool(x, mask[:, : x.shape[1]]))}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(outputs["logits"].float(), batch["label"], ignore_index=IGNORE)

    def predict(self, outputs: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"label": outputs["logits"].argmax(-1)}

    def label_probabilities(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, labels]: the softmax of the label logits."""
        return torch.softmax(outputs["logits"].float(), dim=-1)

    def paper_comparable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


@HEADS.register("intent_slots", IntentSlotConfig)
def build_intent_slots(
    config: IntentSlotConfig, dim: int, num_tags: int, num_labels: int, tag_names: list[str] | None = None
) -> IntentSlotHead:
    return IntentSlotHead(dim, num_tags, num_labels, config.decode, tag_names)


@HEADS.register("classification", ClassificationConfig)
def build_classification(
    config: ClassificationConfig, dim: int, num_tags: int, num_labels: int, tag_names: list[str] | None = None
) -> ClassificationHead:
    return ClassificationHead(dim, num_labels, config.pooling, config.pooled_dim)
