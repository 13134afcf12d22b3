"""The MinHash projection of pNLP-Mixer (arXiv 2202.04350, section 2.1 and Figure 2).

A subword's fingerprint is, for each of n hash functions, the minimum hash over its character trigrams;
a word's fingerprint is the element-wise minimum over its subwords' fingerprints (the MinHash of the
union of their trigram sets); a counting Bloom filter of size F then counts the n values modulo F.

Choices the paper leaves open, made here (`RULE_VERSION` changes whenever one of them does):
- Hash family: double hashing h_i(g) = h1(g) + i * h2(g) mod 2**64 over two seeded 64-bit xxHash values.
- A `##` continuation piece is hashed in its own namespace (a leading marker byte), so `##ing` and the
  word `ing` get different fingerprints; the public code makes them collide.
- A piece shorter than three characters (after removing `##`) is hashed whole, as a single gram; so are
  the special tokens (`[UNK]`, ...).
- A word that WordPiece cannot split (it yields `[UNK]`) is fingerprinted from its own characters
  (trigrams of the word, in a third namespace) rather than sharing `[UNK]`'s fingerprint with every other
  unknown word.
Only table look-ups happen per word: the fingerprints of the whole vocabulary are computed once, with
numpy, and cached on disk under a key made of everything they depend on.

The gram rules and the hash family live here and are shared with the other hashing projections of
Table 1 (`simhash.py`, `tsp.py`, `binary.py`): `word_gram_lists` gives a word's grams under exactly the
rules above, `gram_bits` turns grams into well-mixed random bits, `sum_over_groups` sums per-gram vectors
into per-word ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import xxhash

from pnlp_bench.core.atomic import write_atomic
from pnlp_bench.core.paths import MBERT_CASED_VOCAB, cache_dir
from pnlp_bench.mixer.projection.base import PROJECTIONS, WordFeatures, check_size_and_window
from pnlp_bench.mixer.projection.tokenizer import read_vocab, split_words
from pnlp_bench.core.registry import ConfigError

RULE_VERSION = 1
NAMESPACE_WORD_START = b"\x00"
NAMESPACE_CONTINUATION = b"\x01"
NAMESPACE_UNSPLIT_WORD = b"\x02"
NAMESPACE_WHOLE_WORD = b"\x03"
ENTRIES_PER_CHUNK = 8192


@dataclass
class MinHashConfig:
    feature_size: int = 1024
    num_hashes: int = 64
    window: int = 1
    seed: int = 0
    vocab: str | None = None

    def validate(self, where: str) -> None:
        check_size_and_window(self.feature_size, self.window, where)
        if self.num_hashes < 1:
            raise ConfigError(f"{where}.num_hashes must be positive, got {self.num_hashes}")


def grams_of(text: str, namespace: bytes) -> list[bytes]:
    """Character trigrams of `text`, or `text` whole when shorter than a trigram, each tagged by namespace."""
    if len(text) < 3:
        return [namespace + text.encode("utf-8")]
    return [namespace + text[start : start + 3].encode("utf-8") for start in range(len(text) - 2)]


def piece_grams(piece: str) -> list[bytes]:
    if piece.startswith("[") and piece.endswith("]"):
        return [NAMESPACE_WORD_START + piece.encode("utf-8")]
    if piece.startswith("##"):
        return grams_of(piece[2:], NAMESPACE_CONTINUATION)
    return grams_of(piece, NAMESPACE_WORD_START)


def hash_family(grams: Sequence[bytes], num_hashes: int, seed: int) -> np.ndarray:
    """[len(grams), num_hashes] uint64: h_i = h1 + i * h2 (mod 2**64), h2 odd so the family never degenerates."""
    first = np.fromiter((xxhash.xxh64_intdigest(g, seed=seed) for g in grams), dtype=np.uint64, count=len(grams))
    second = np.fromiter(
        (xxhash.xxh64_intdigest(g, seed=seed + 0x9E3779B1) | 1 for g in grams), dtype=np.uint64, count=len(grams)
    )
    steps = np.arange(num_hashes, dtype=np.uint64)
    return first[:, None] + steps[None, :] * second[:, None]


def mix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64: every output bit depends on every input bit.

    Double hashing h1 + i*h2 is fine for MinHash, which only compares whole values, but its low bits are
    not independent across i (bit 0 just alternates, h2 being odd); projections that read single bits mix
    each value first.
    """
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def gram_bits(grams: Sequence[bytes], num_bits: int, seed: int) -> np.ndarray:
    """[len(grams), num_bits] uint8 in {0, 1}: independent-looking random bits of each gram, fixed by its bytes and the seed."""
    words = (num_bits + 63) // 64
    mixed = mix64(hash_family(grams, words, seed)).astype("<u8")
    return np.unpackbits(mixed.view(np.uint8), axis=1, bitorder="little")[:, :num_bits]


def min_over_groups(gram_hashes: np.ndarray, gram_ids: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """Element-wise minimum of gram_hashes[gram_ids] over consecutive groups (each of size >= 1)."""
    out = np.empty((len(group_sizes), gram_hashes.shape[1]), dtype=np.uint64)
    starts = np.concatenate([[0], np.cumsum(group_sizes)[:-1]])
    for first in range(0, len(group_sizes), ENTRIES_PER_CHUNK):
        last = min(first + ENTRIES_PER_CHUNK, len(group_sizes))
        begin, end = starts[first], starts[last - 1] + group_sizes[last - 1]
        block = gram_hashes[gram_ids[begin:end]]
        out[first:last] = np.minimum.reduceat(block, starts[first:last] - begin, axis=0)
    return out


def sum_over_groups(vectors: np.ndarray, vector_ids: np.ndarray, group_sizes: np.ndarray) -> np.ndarray:
    """Sum of vectors[vector_ids] over consecutive groups (each of size >= 1), in vectors' dtype."""
    # torch's index_add_ rather than np.add.reduceat, which is ~30x slower along axis 0 of a wide array.
    groups = torch.from_numpy(np.repeat(np.arange(len(group_sizes)), group_sizes))
    rows = torch.from_numpy(vectors)[torch.from_numpy(vector_ids)]
    out = torch.zeros(len(group_sizes), vectors.shape[1], dtype=rows.dtype)
    return out.index_add_(0, groups, rows).numpy()


def word_pieces(words: Sequence[str], vocab_path: Path, unk_id: int) -> list[list[int] | None]:
    """Each word's WordPiece ids, or None where WordPiece cannot split it (no piece, or `[UNK]`)."""
    piece_ids = split_words(list(words), str(vocab_path))
    return [ids if ids and unk_id not in ids else None for ids in piece_ids]


def word_gram_lists(words: Sequence[str], vocab_path: Path) -> list[list[bytes]]:
    """Each word's grams under MinHash's rules: its pieces' gram lists, in order and with repeats (a
    multiset); the word's own trigrams, in their own namespace, when WordPiece cannot split it."""
    pieces = vocabulary(vocab_path)
    gram_lists = []
    for word, ids in zip(words, word_pieces(words, vocab_path, pieces.index("[UNK]"))):
        if ids is None:
            gram_lists.append(grams_of(word, NAMESPACE_UNSPLIT_WORD))
        else:
            gram_lists.append([gram for piece in ids for gram in piece_grams(pieces[piece])])
    return gram_lists


def vocabulary(vocab_path: Path) -> list[str]:
    return _vocabulary(str(vocab_path))


@lru_cache(maxsize=4)
def _vocabulary(vocab_path: str) -> list[str]:
    return read_vocab(Path(vocab_path))


def fingerprints_of_gram_lists(gram_lists: Sequence[list[bytes]], num_hashes: int, seed: int) -> np.ndarray:
    """MinHash fingerprint [len(gram_lists), num_hashes] of each non-empty list of grams."""
    gram_index: dict[bytes, int] = {}
    gram_ids = np.fromiter(
        (gram_index.setdefault(gram, len(gram_index)) for grams in gram_lists for gram in grams), dtype=np.int64
    )
    group_sizes = np.fromiter((len(grams) for grams in gram_lists), dtype=np.int64, count=len(gram_lists))
    gram_hashes = hash_family(list(gram_index), num_hashes, seed)
    return min_over_groups(gram_hashes, gram_ids, group_sizes)


def vocab_digest(vocab_path: Path) -> str:
    return hashlib.sha256(vocab_path.read_bytes()).hexdigest()[:16]


def fingerprint_table(vocab_path: Path, num_hashes: int, seed: int) -> np.ndarray:
    """Fingerprints [vocab size, num_hashes] (uint64) of every vocabulary entry, cached on disk."""
    key = f"v{RULE_VERSION}-{vocab_digest(vocab_path)}-n{num_hashes}-s{seed}"
    path = cache_dir() / "fingerprints" / f"{key}.npy"
    if path.exists():
        return np.load(path)
    pieces = read_vocab(vocab_path)
    table = fingerprints_of_gram_lists([piece_grams(piece) for piece in pieces], num_hashes, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda handle: np.save(handle, table))
    return table


class MinHashProjection:
    def __init__(self, config: MinHashConfig) -> None:
        self.config = config
        self.vocab_path = Path(config.vocab) if config.vocab else MBERT_CASED_VOCAB
        self.feature_size = config.feature_size
        self.features_per_word = config.num_hashes
        self._table: np.ndarray | None = None
        self._unk_id = vocabulary(self.vocab_path).index("[UNK]")

    @property
    def table(self) -> np.ndarray:
        if self._table is None:
            self._table = fingerprint_table(self.vocab_path, self.config.num_hashes, self.config.seed)
        return self._table

    def cache_key(self) -> str:
        return (
            f"minhash-v{RULE_VERSION}-{vocab_digest(self.vocab_path)}"
            f"-n{self.config.num_hashes}-s{self.config.seed}-F{self.config.feature_size}"
        )

    def word_fingerprints(self, words: Sequence[str]) -> np.ndarray:
        """[len(words), n] uint64: min over each word's subword fingerprints."""
        piece_ids = word_pieces(words, self.vocab_path, self._unk_id)
        out = np.empty((len(words), self.config.num_hashes), dtype=np.uint64)
        rows = [index for index, ids in enumerate(piece_ids) if ids is not None]
        if rows:
            flat = np.fromiter((piece for row in rows for piece in piece_ids[row]), dtype=np.int64)
            sizes = np.fromiter((len(piece_ids[row]) for row in rows), dtype=np.int64, count=len(rows))
            out[rows] = min_over_groups(self.table, flat, sizes)
        unsplit = [index for index, ids in enumerate(piece_ids) if ids is None]
        if unsplit:
            grams = [grams_of(words[index], NAMESPACE_UNSPLIT_WORD) for index in unsplit]
            out[unsplit] = fingerprints_of_gram_lists(grams, self.config.num_hashes, self.config.seed)
        return out

    def word_features(self, words: Sequence[str]) -> WordFeatures:
        buckets = self.word_fingerprints(words) % np.uint64(self.config.feature_size)
        dtype = torch.int16 if self.config.feature_size <= np.iinfo(np.int16).max else torch.int32
        return WordFeatures(indices=torch.from_numpy(buckets.astype(np.int64)).to(dtype))


@PROJECTIONS.register("minhash", MinHashConfig)
def build_minhash(config: MinHashConfig) -> MinHashProjection:
    return MinHashProjection(config)
