"""Which slice of a class a machine grades (``batch --shard K/N``, ``grading-workflow --fetch``,
``merge``): a student's slice is the SHA-256 of their name modulo N, so it depends on nothing else,
not on who else is in the class, nor on the order of the folders."""
from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

Named = TypeVar("Named")


def parse_shard(text: str) -> tuple[int, int] | None:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N, else None."""
    k, sep, n = text.partition("/")
    if not (sep and k.isascii() and k.isdigit() and n.isascii() and n.isdigit()):
        return None
    return (int(k), int(n)) if 1 <= int(k) <= int(n) else None


def shard_of(name: str, shards: int) -> int:
    """The slice (1 to ``shards``) a student belongs to: from their name alone, so two machines
    that see the same class, or a class that gained or lost a student, agree on everyone else."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % shards + 1


def in_shard(students: Sequence[Named], shard: tuple[int, int]) -> list[Named]:
    """The students (anything with a ``name``) of slice K of N, in their order."""
    k, n = shard
    return [s for s in students if shard_of(s.name, n) == k]  # type: ignore[attr-defined]
