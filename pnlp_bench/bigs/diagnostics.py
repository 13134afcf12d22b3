"""What a masked-LM encoder reads from its context: word order, nearby words, and where attention looks.

Every score here is the dev MLM loss on exactly the positions the pretraining's dev evaluation masks
(`pretrain.evaluate_mlm`: the same fixed masking seed, rate and cap, drawn batch by batch), under a change of
the unmasked context only (the targets, [CLS], [SEP] and [PAD] never move):

* ``as_is``: the context unchanged (equals the run's recorded dev loss).
* ``context_shuffled``: in each block, the unmasked ordinary tokens are permuted among their own positions, so
  the block keeps its bag of words and loses its order. An encoder that has learned nothing of word order
  scores the same as ``as_is``.
* ``window``: only the unmasked tokens within ``window`` positions of a target are kept; the rest become
  [MASK]. Close to ``as_is`` means the encoder's predictions rest on nearby words.

For attention routings, ``adjacent_attention`` is the mean softmax weight a query gives to the tokens right
beside it (offsets -1 and +1), as a multiple of the uniform weight 1/L: 1.0 means attention ignores adjacency.
"""

from __future__ import annotations


import torch

from pnlp_bench.bigs.masking import IGNORE_INDEX, mask_tokens, maskable
from pnlp_bench.bigs.model import BiGSForMaskedLM, SelfAttention
from pnlp_bench.bigs.pretrain import masked_lm_loss
from pnlp_bench.bigs.tokenization import Vocabulary

CONDITIONS = ("as_is", "context_shuffled", "window")


def shuffle_context(inputs: torch.Tensor, context: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """`inputs` with the tokens where `context` is True permuted among those positions, row by row."""
    shuffled = inputs.clone()
    for row in range(inputs.shape[0]):
        where = context[row].nonzero().flatten()
        shuffled[row, where] = inputs[row, where[torch.randperm(len(where), generator=generator)]]
    return shuffled


def keep_window(inputs: torch.Tensor, context: torch.Tensor, targets: torch.Tensor, window: int, mask_id: int) -> torch.Tensor:
    """`inputs` with every context token farther than `window` positions from every target set to `mask_id`."""
    near = torch.zeros_like(targets)
    length = targets.shape[1]
    for offset in range(1, window + 1):
        near[:, offset:] |= targets[:, :-offset]
        near[:, : length - offset] |= targets[:, offset:]
    kept = inputs.clone()
    kept[context & ~near] = mask_id
    return kept


@torch.no_grad()
def context_use(
    model: BiGSForMaskedLM, blocks: torch.Tensor, vocab: Vocabulary, probability: float, max_predictions: int | None,
    mask_seed: int, batch_size: int, window: int = 2, shuffle_seed: int = 1,
) -> dict[str, float]:
    """Dev MLM loss per condition (see the module docstring), and the number of masked targets."""
    model.eval()
    losses = {}
    for condition in CONDITIONS:
        masking = torch.Generator().manual_seed(mask_seed)
        shuffling = torch.Generator().manual_seed(shuffle_seed)
        total, count = 0.0, 0
        for start in range(0, blocks.shape[0], batch_size):
            ids = blocks[start : start + batch_size].long()
            inputs, labels = mask_tokens(ids, vocab, masking, probability, max_predictions)
            targets = labels != IGNORE_INDEX
            context = maskable(ids, vocab) & ~targets
            if condition == "context_shuffled":
                inputs = shuffle_context(inputs, context, shuffling)
            elif condition == "window":
                inputs = keep_window(inputs, context, targets, window, vocab.mask)
            loss, masked, _ = masked_lm_loss(model, inputs, labels)
            total, count = total + loss.item() * masked, count + masked
        losses[condition] = total / max(count, 1)
    return {**losses, "masked_tokens": count, "window_size": window}


@torch.no_grad()
def adjacent_attention(model: BiGSForMaskedLM, blocks: torch.Tensor) -> float | None:
    """Mean attention weight on offsets -1 and +1 over every attention module, head and query, times the length
    (1.0 = uniform); None for a model without attention. Reads the modules' inputs through forward hooks."""
    modules = [module for module in model.modules() if isinstance(module, SelfAttention)]
    if not modules:
        return None
    ratios: list[float] = []

    def hook(module: SelfAttention, args: tuple, _output: torch.Tensor) -> None:
        length = args[0].shape[1]
        weights = module.attention_weights(args[0])  # relative bias included where the model has one
        index = torch.arange(length)
        beside = (weights[..., index[1:], index[:-1]].mean() + weights[..., index[:-1], index[1:]].mean()) / 2
        ratios.append(float(beside) * length)

    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        model.eval()
        model.backbone(blocks.long())
    finally:
        for handle in handles:
            handle.remove()
    return sum(ratios) / len(ratios)
