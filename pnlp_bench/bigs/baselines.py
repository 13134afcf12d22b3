"""What a masked-LM dev score must beat: models that read no context at all.

* `unigram_baseline`: an add-one unigram model of the training text. An encoder whose MLM dev perplexity is
  not well below it has learned nothing from pretraining but the token frequencies.
* `context_free_baseline`: the same unigram model plus the one thing BERT's masking gives away without any
  context: of the chosen positions, 80% show [MASK], 10% a random token and 10% the target itself, so a
  position that does not show [MASK] holds its own target with probability 0.1 / (0.1 + 0.1) = 0.5 (from the
  masking recipe, nothing fitted). There it predicts 0.5 x (the token shown) + 0.5 x unigram; at [MASK], the
  unigram. An encoder at this level reads nothing from the other words of the block.

Both are scored on exactly the positions the pretraining's dev evaluation masks (`pretrain.evaluate_mlm`: the
same fixed masking seed, rate and cap), with add-one (Laplace) smoothing over the ordinary vocabulary counted
from the training blocks ([CLS], [SEP], [PAD] and [MASK] are never targets, so they are not counted).
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


def dev_targets(dev: torch.Tensor, vocab: Vocabulary, probability: float, max_predictions: int | None, mask_seed: int,
                batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, what the input shows at each target) over the dev split's masked positions, drawn batch by batch
    as `evaluate_mlm` draws them (same generator, same batch boundaries)."""
    generator = torch.Generator().manual_seed(mask_seed)
    targets, shown = [], []
    for start in range(0, dev.shape[0], batch_size):
        inputs, labels = mask_tokens(dev[start : start + batch_size].long(), vocab, generator, probability, max_predictions)
        chosen = labels != IGNORE_INDEX
        targets.append(labels[chosen])
        shown.append(inputs[chosen].long())
    return torch.cat(targets), torch.cat(shown)


def _score(losses: torch.Tensor) -> dict[str, float]:
    loss = float(losses.mean()) if losses.numel() else 0.0
    return {"mlm_loss": loss, "perplexity": math.exp(loss), "masked_tokens": int(losses.numel())}


def unigram_log_probability(train: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    counts = unigram_counts(train, vocab) + 1.0
    return counts.log() - counts.sum().log()


def unigram_baseline(train: torch.Tensor, dev: torch.Tensor, vocab: Vocabulary, probability: float,
                     max_predictions: int | None, mask_seed: int, batch_size: int) -> dict[str, float]:
    """{mlm_loss, perplexity, masked_tokens} of the add-one unigram model on the dev split's masked positions."""
    targets, _ = dev_targets(dev, vocab, probability, max_predictions, mask_seed, batch_size)
    return _score(-unigram_log_probability(train, vocab)[targets])


def context_free_baseline(train: torch.Tensor, dev: torch.Tensor, vocab: Vocabulary, probability: float,
                          max_predictions: int | None, mask_seed: int, batch_size: int,
                          mask_fraction: float = 0.8, random_fraction: float = 0.1) -> dict[str, float]:
    """{mlm_loss, perplexity, masked_tokens} of the unigram model that also trusts the token a position shows
    (module docstring), on the dev split's masked positions."""
    targets, shown = dev_targets(dev, vocab, probability, max_predictions, mask_seed, batch_size)
    unigram = unigram_log_probability(train, vocab)[targets].exp()
    keep = (1.0 - mask_fraction - random_fraction) / (1.0 - mask_fraction) if mask_fraction < 1.0 else 0.0
    visible = keep * (shown == targets).double() + (1.0 - keep) * unigram
    return _score(-torch.where(shown == vocab.mask, unigram, visible).log())
