"""What a masked-LM dev score must beat: an add-one unigram model of the training text.

A unigram model ignores the context, so an encoder whose MLM dev perplexity is not well below it has learned
nothing from pretraining but the token frequencies. It is scored on exactly the positions the pretraining's
dev evaluation masks (`pretrain.evaluate_mlm`: the same fixed masking seed, rate and cap), with add-one
(Laplace) smoothing over the ordinary vocabulary counted from the training blocks ([CLS], [SEP], [PAD] and
[MASK] are never targets, so they are not counted).
"""

from __future__ import annotations

import math

import torch

from pnlp_bench.bigs.masking import IGNORE_INDEX, mask_tokens, maskable
from pnlp_bench.bigs.tokenization import Vocabulary


def unigram_counts(blocks: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """Counts per vocabulary id of the tokens that can be masking targets."""
    ids = blocks.long()
    return torch.bincount(ids[maskable(ids, vocab)], minlength=vocab.size).double()


def unigram_baseline(train: torch.Tensor, dev: torch.Tensor, vocab: Vocabulary, probability: float,
                     max_predictions: int | None, mask_seed: int, batch_size: int) -> dict[str, float]:
    """{mlm_loss, perplexity, masked_tokens} of the add-one unigram model on the dev split's masked positions,
    drawn batch by batch as `evaluate_mlm` draws them (same generator, same batch boundaries)."""
    counts = unigram_counts(train, vocab) + 1.0
    log_probability = counts.log() - counts.sum().log()
    generator = torch.Generator().manual_seed(mask_seed)
    total, masked = 0.0, 0
    for start in range(0, dev.shape[0], batch_size):
        _, labels = mask_tokens(dev[start : start + batch_size].long(), vocab, generator, probability, max_predictions)
        targets = labels[labels != IGNORE_INDEX]
        total -= float(log_probability[targets].sum())
        masked += int(targets.numel())
    loss = total / max(masked, 1)
    return {"mlm_loss": loss, "perplexity": math.exp(loss), "masked_tokens": masked}
