"""Deterministic, stratified splits for data sets that come without the split a protocol needs.

Examples are ordered within each label by a keyed hash of their uid (SHA-256 of "<seed>:<uid>"), not by
a random number generator: the order depends only on the seed and the uids, so it is the same on every
machine, Python and numpy version, and whatever order the source file lists the examples in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from typing import Protocol, TypeVar


class Labelled(Protocol):
    """What a split needs of an example, in either family: a stable id and a label."""

    uid: str
    label: object


Example = TypeVar("Example", bound=Labelled)


def hash_order(examples: Sequence[Example], seed: int) -> list[Example]:
    return sorted(examples, key=lambda example: hashlib.sha256(f"{seed}:{example.uid}".encode()).digest())


def by_label(examples: Sequence[Example]) -> dict[object, list[Example]]:
    groups: dict[object, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.label].append(example)
    return dict(sorted(groups.items(), key=lambda item: str(item[0])))


def carve_stratified(examples: Sequence[Example], size: int, seed: int) -> tuple[list[Example], list[Example]]:
    """(rest, carved): `size` examples taken out with each label's share kept (largest remainders).

    Both parts keep the source order, so a carved split reads like the file it came from.
    """
    groups = by_label(examples)
    total = len(examples)
    exact = {label: size * len(members) / total for label, members in groups.items()}
    quota = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(groups, key=lambda label: (-(exact[label] - quota[label]), label))
    for label in by_remainder[: size - sum(quota.values())]:
        quota[label] += 1
    carved_ids = {
        example.uid for label, members in groups.items() for example in hash_order(members, seed)[: quota[label]]
    }
    rest = [example for example in examples if example.uid not in carved_ids]
    carved = [example for example in examples if example.uid in carved_ids]
    return rest, carved


def stratified_folds(examples: Sequence[Example], folds: int, seed: int) -> list[list[Example]]:
    """`folds` disjoint folds covering every example; each label is dealt round-robin in hash order, and
    the next label starts where the previous one stopped, so fold sizes differ by at most one."""
    assignment: dict[str, int] = {}
    position = 0
    for members in by_label(examples).values():
        for example in hash_order(members, seed):
            assignment[example.uid] = position % folds
            position += 1
    result: list[list[Example]] = [[] for _ in range(folds)]
    for example in examples:
        result[assignment[example.uid]].append(example)
    return result
