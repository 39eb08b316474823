"""List pages bounded by the bytes of their JSON as well as by a count. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")

# The most items one page holds; lists the reference serves whole default to it.
MAX_LIMIT = 1000
# Both databases hold LIMIT/OFFSET as signed 64-bit integers; a larger offset is a 400.
MAX_OFFSET = 2**63 - 1


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    items: list[T]
    # Where the next page starts; None when this page reaches the end of the list.
    next_offset: int | None


def fitting(sizes: Iterable[int], budget: int) -> int:
    """How many leading items of these JSON sizes fit in a ``budget``-byte array. The first
    always does, so an oversized item is still served alone and paging always progresses."""
    used = 1  # "[" ; each item then adds its size and a "," or the closing "]"
    count = 0
    for size in sizes:
        if count and used + size + 1 > budget:
            break
        used += size + 1
        count += 1
    return count


def page(items: Sequence[T], *, budget: int, offset: int, available: int) -> Page[T]:
    """The leading ``items`` whose JSON array fits ``budget`` bytes. ``available`` is how many
    rows the store holds from ``offset`` on (fetch one more than the page to learn it)."""
    kept = fitting((len(msgspec.json.encode(item)) for item in items), budget)
    return Page(items=list(items[:kept]), next_offset=offset + kept if available > kept else None)


def batches(sized: Sequence[tuple[T, int]], budget: int) -> list[list[T]]:
    """Consecutive groups of these (item, size) pairs, each at most ``budget`` in total size
    unless a single item alone exceeds it; order is kept."""
    groups: list[list[T]] = []
    used = 0
    for item, size in sized:
        if not groups or used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += size
    return groups
