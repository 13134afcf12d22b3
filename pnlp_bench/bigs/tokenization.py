"""BERT-uncased WordPiece for BiGS, and fixed-length encoding of single texts, pairs and multiple choice.

The released BiGS checkpoints use `bert-large-uncased`'s tokenizer, whose vocabulary is the 30,522 entries of
`bert-base-uncased` shipped in `pnlp_bench/assets/vocab/`. Normalisation (lower-casing, accent stripping,
CJK spacing) and pre-tokenisation are BERT's, through the `tokenizers` library; `tests/test_text_data.py`
checks the ids against `transformers.BertTokenizer`.

Sequences are ``[CLS] a [SEP]`` and ``[CLS] a [SEP] b [SEP]`` (token types 0 for a, 1 for b), padded to
`max_length`. Pairs are cut as BERT's `longest_first` does (one token at a time from the longer side; the
second side on ties), or with `only_second`, which cuts the long context and keeps the first text (a
question, a hypothesis) unless that alone exceeds half the budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from pnlp_bench.bigs.data.text_tasks import TextExample
from pnlp_bench.core.paths import BERT_UNCASED_VOCAB

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_RESERVED = re.compile(r"^\[(unused\d+|PAD|UNK|CLS|SEP|MASK)\]$")


@dataclass(frozen=True)
class Vocabulary:
    """Ids the pipeline needs; `first_ordinary` is the first id after the special and [unused*] entries."""

    size: int
    pad: int
    unk: int
    cls: int
    sep: int
    mask: int
    first_ordinary: int


@lru_cache(maxsize=4)
def read_vocabulary(vocab_path: str = str(BERT_UNCASED_VOCAB)) -> tuple[str, ...]:
    with open(vocab_path, encoding="utf-8") as handle:
        return tuple(line.rstrip("\n") for line in handle)


@lru_cache(maxsize=4)
def vocabulary(vocab_path: str = str(BERT_UNCASED_VOCAB)) -> Vocabulary:
    entries = read_vocabulary(vocab_path)
    index = {piece: i for i, piece in enumerate(entries)}
    missing = [token for token in SPECIAL_TOKENS if token not in index]
    if missing:
        raise ValueError(f"{vocab_path}: no {', '.join(missing)} entry")
    reserved = [i for i, piece in enumerate(entries) if _RESERVED.match(piece)]
    return Vocabulary(
        size=len(entries),
        pad=index["[PAD]"],
        unk=index["[UNK]"],
        cls=index["[CLS]"],
        sep=index["[SEP]"],
        mask=index["[MASK]"],
        first_ordinary=max(reserved) + 1,
    )


@lru_cache(maxsize=4)
def wordpiece(vocab_path: str = str(BERT_UNCASED_VOCAB)) -> Tokenizer:
    """BERT's uncased WordPiece; special tokens written in the text (`[UNK]`) map to their ids."""
    entries = read_vocabulary(vocab_path)
    tokenizer = Tokenizer(WordPiece({piece: i for i, piece in enumerate(entries)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    return tokenizer


def tokenize(texts: list[str], vocab_path: str = str(BERT_UNCASED_VOCAB)) -> list[list[int]]:
    """WordPiece ids of each text, no special tokens (batched in Rust)."""
    if not texts:
        return []
    return [encoding.ids for encoding in wordpiece(vocab_path).encode_batch(texts, add_special_tokens=False)]


def pair_lengths(first: int, second: int, budget: int, truncation: str) -> tuple[int, int]:
    """How many tokens of each side fit in `budget` (max_length minus the three special tokens)."""
    if first + second <= budget:
        return first, second
    if truncation == "only_second":
        kept_first = min(first, budget // 2)
        return kept_first, min(second, budget - kept_first)
    # longest_first: the longer side loses tokens until both are equal, then they alternate (second first)
    shorter = min(first, second)
    if shorter <= budget // 2:
        return (first, budget - first) if first == shorter else (budget - second, second)
    return budget - budget // 2, budget // 2


@dataclass
class Encoded:
    """Token ids (int32) and token types (int8), [N, L] or [N, choices, L]; padding is id `pad`."""

    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    truncated: int

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def pack(first: list[int], second: list[int] | None, max_length: int, truncation: str, vocab: Vocabulary) -> tuple[list[int], list[int], bool]:
    """(ids, token types, whether anything was cut) of one sequence, not yet padded."""
    if second is None:
        kept = first[: max_length - 2]
        return [vocab.cls, *kept, vocab.sep], [0] * (len(kept) + 2), len(kept) < len(first)
    keep_first, keep_second = pair_lengths(len(first), len(second), max_length - 3, truncation)
    ids = [vocab.cls, *first[:keep_first], vocab.sep, *second[:keep_second], vocab.sep]
    types = [0] * (keep_first + 2) + [1] * (keep_second + 1)
    return ids, types, keep_first < len(first) or keep_second < len(second)


def encode_examples(
    examples: list[TextExample], max_length: int, truncation: str = "longest_first", vocab_path: str = str(BERT_UNCASED_VOCAB)
) -> Encoded:
    """Fixed-length tensors for a split: single texts, pairs, or (multiple choice) one pair per choice.

    Multiple choice: sequence c is ``[CLS] text choice_c [SEP] text_pair [SEP]`` (or without the pair part).
    """
    vocab = vocabulary(vocab_path)
    firsts = tokenize([example.text for example in examples], vocab_path)
    has_pairs = any(example.text_pair is not None for example in examples)
    seconds = tokenize([example.text_pair or "" for example in examples], vocab_path) if has_pairs else [None] * len(examples)
    choices = [example.choices for example in examples]
    multiple_choice = any(c is not None for c in choices)
    if multiple_choice:
        if any(c is None for c in choices) or len({len(c) for c in choices}) != 1:  # type: ignore[arg-type]
            raise ValueError("multiple choice: every example needs the same number of choices")
        flat = tokenize([choice for c in choices for choice in c], vocab_path)  # type: ignore[union-attr]
        per_example = len(choices[0])  # type: ignore[arg-type]
        sequences = [
            [(firsts[i] + flat[i * per_example + c], seconds[i]) for c in range(per_example)] for i in range(len(examples))
        ]
    else:
        sequences = [[(firsts[i], seconds[i])] for i in range(len(examples))]
    width = len(sequences[0]) if sequences else 1
    input_ids = torch.full((len(examples), width, max_length), vocab.pad, dtype=torch.int32)
    token_types = torch.zeros((len(examples), width, max_length), dtype=torch.int8)
    truncated = 0
    for row, pairs in enumerate(sequences):
        cut_any = False
        for column, (first, second) in enumerate(pairs):
            ids, types, cut = pack(first, second, max_length, truncation, vocab)
            input_ids[row, column, : len(ids)] = torch.tensor(ids, dtype=torch.int32)
            token_types[row, column, : len(types)] = torch.tensor(types, dtype=torch.int8)
            cut_any |= cut
        truncated += cut_any
    if not multiple_choice:
        input_ids, token_types = input_ids[:, 0], token_types[:, 0]
    return Encoded(input_ids, token_types, truncated)


def vocab_digest(vocab_path: str = str(BERT_UNCASED_VOCAB)) -> str:
    import hashlib

    return hashlib.md5(Path(vocab_path).read_bytes()).hexdigest()
