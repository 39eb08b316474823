"""The in-memory deployment-object cache behind full target-state answers: hits, LRU order and
the byte budget (the oldest objects go first; a single oversized object is not kept)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from brokkr.broker.caches.objects import ObjectCache
from brokkr.common import wire

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def an_object(size: int) -> wire.DeploymentObject:
    return wire.DeploymentObject(
        id=uuid.uuid4(),
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
        sequence_id=1,
        stack_id=uuid.uuid4(),
        yaml_content="x" * size,
        yaml_checksum="0" * 64,
        submitted_at=NOW,
        is_deletion_marker=False,
    )


def test_a_stored_object_is_returned() -> None:
    cache = ObjectCache(budget_bytes=100)
    item = an_object(10)
    cache.put_all([item])
    assert cache.get(item.id) is item
    assert cache.get(uuid.uuid4()) is None


def test_the_least_recently_used_objects_leave_first_when_over_budget() -> None:
    cache = ObjectCache(budget_bytes=30)
    first, second, third = an_object(10), an_object(10), an_object(10)
    cache.put_all([first, second, third])
    assert cache.get(first.id) is first  # now the most recently used
    cache.put_all([an_object(10)])
    assert cache.get(second.id) is None
    assert cache.get(first.id) is first and cache.get(third.id) is third


def test_an_object_larger_than_the_budget_is_not_kept() -> None:
    cache = ObjectCache(budget_bytes=5)
    big = an_object(10)
    cache.put_all([big])
    assert cache.get(big.id) is None
