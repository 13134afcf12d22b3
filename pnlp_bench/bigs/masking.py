"""BERT's masking for masked-LM pretraining: 15% of the tokens, replaced 80% [MASK] / 10% random / 10% kept.

Per sequence, exactly ``round(probability * n)`` of its n maskable tokens are chosen (at least one, at most
`max_predictions` when given; the BiGS authors used 20 at length 128), as BERT's data creation does, rather
than an independent coin per token: the rate is then exact for every sequence. [PAD], [CLS], [SEP] and
[MASK] are never chosen. Random replacements are drawn from the ordinary vocabulary (ids from
`Vocabulary.first_ordinary`), so no [unused*] or special token is ever put into the input.

Labels are the original ids at the chosen positions and -100 everywhere else, so the loss (which ignores
-100) is computed on the chosen positions only.
"""

from __future__ import annotations

import torch

from pnlp_bench.bigs.tokenization import Vocabulary

IGNORE_INDEX = -100


def maskable(input_ids: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """True where a token may be chosen: everything except [PAD], [CLS], [SEP] and [MASK]."""
    special = torch.tensor([vocab.pad, vocab.cls, vocab.sep, vocab.mask], device=input_ids.device)
    return ~torch.isin(input_ids, special)


def mask_tokens(
    input_ids: torch.Tensor,
    vocab: Vocabulary,
    generator: torch.Generator,
    probability: float = 0.15,
    max_predictions: int | None = None,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked inputs, labels) for a [batch, length] tensor of ids; neither input is modified in place.

    `generator` lives on the CPU; the random draws are moved to the ids' device, so a seed gives the same
    masks on every device.
    """
    candidates = maskable(input_ids, vocab).cpu()
    counts = candidates.sum(dim=1)
    chosen_counts = torch.round(counts.double() * probability).long()
    chosen_counts = torch.where(counts > 0, chosen_counts.clamp(min=1), 0)
    if max_predictions is not None:
        chosen_counts = chosen_counts.clamp(max=max_predictions)
    # rank the candidates of each row in a random order; the first chosen_counts of them are masked
    scores = torch.rand(input_ids.shape, generator=generator)
    scores[~candidates] = 2.0  # after every candidate
    order = scores.argsort(dim=1)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(input_ids.shape[1]).expand_as(order).contiguous())
    chosen = (ranks < chosen_counts[:, None]) & candidates

    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = chosen & (action < mask_fraction)
    to_random = chosen & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    random_ids = torch.randint(vocab.first_ordinary, vocab.size, input_ids.shape, generator=generator)

    device = input_ids.device
    chosen, to_mask, to_random = chosen.to(device), to_mask.to(device), to_random.to(device)
    masked = torch.where(to_mask, torch.full_like(input_ids, vocab.mask), input_ids)
    masked = torch.where(to_random, random_ids.to(device=device, dtype=input_ids.dtype), masked)
    labels = torch.where(chosen, input_ids.long(), torch.full_like(input_ids, IGNORE_INDEX, dtype=torch.long))
    return masked, labels
