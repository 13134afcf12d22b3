"""Splitting words into mBERT-cased WordPiece units.

Sequence positions are words (the paper's choice); each word is split with the same pre-tokenizer and
WordPiece model as mBERT-cased, so a word such as "flights," or a run of CJK characters becomes several
pieces, all belonging to the one word.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from pnlp_bench.core.paths import MBERT_CASED_VOCAB


def read_vocab(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


@lru_cache(maxsize=4)
def wordpiece_tokenizer(vocab_path: str = str(MBERT_CASED_VOCAB), lowercase: bool = False) -> Tokenizer:
    vocab = {piece: index for index, piece in enumerate(read_vocab(Path(vocab_path)))}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False if not lowercase else None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def split_words(words: list[str], vocab_path: str = str(MBERT_CASED_VOCAB)) -> list[list[int]]:
    """WordPiece ids of each word (batched in Rust; the caller passes unique words only)."""
    tokenizer = wordpiece_tokenizer(vocab_path)
    encodings = tokenizer.encode_batch(words, add_special_tokens=False)
    return [encoding.ids for encoding in encodings]
