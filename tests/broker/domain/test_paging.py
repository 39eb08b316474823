"""Pure paging rules: how many items fit a byte budget, and streaming batches."""

from __future__ import annotations

import pytest

from brokkr.broker.domain import paging


@pytest.mark.parametrize(
    ("sizes", "budget", "fits"),
    [
        ([], 100, 0),
        ([10, 10, 10], 100, 3),
        ([10, 10, 10], 23, 2),  # "[" + 10 + "," + 10 + "]" = 23 bytes
        ([10, 10, 10], 22, 1),
        ([500, 1, 1], 100, 1),  # an oversized first item is served alone
        ([1, 500, 1], 100, 1),
    ],
)
def test_fitting_counts_the_json_array_bytes(sizes: list[int], budget: int, fits: int) -> None:
    assert paging.fitting(sizes, budget) == fits


def test_page_reports_the_next_offset_only_when_more_follow() -> None:
    items = ["a" * 10, "b" * 10, "c" * 10]  # each encodes to 12 bytes
    assert paging.page(items, budget=1000, offset=5, available=3).next_offset is None
    assert paging.page(items, budget=1000, offset=5, available=4).next_offset == 8
    cut = paging.page(items, budget=30, offset=5, available=3)
    assert cut.items == items[:2] and cut.next_offset == 7


@pytest.mark.parametrize(
    ("sized", "budget", "groups"),
    [
        ([], 10, []),
        ([("a", 4), ("b", 4), ("c", 4)], 10, [["a", "b"], ["c"]]),
        ([("a", 0), ("b", 0)], 10, [["a", "b"]]),  # already in memory: no database bytes
        ([("a", 50), ("b", 1), ("c", 50)], 10, [["a"], ["b"], ["c"]]),
    ],
)
def test_batches_keep_order_and_bound_each_group(
    sized: list[tuple[str, int]], budget: int, groups: list[list[str]]
) -> None:
    assert paging.batches(sized, budget) == groups
