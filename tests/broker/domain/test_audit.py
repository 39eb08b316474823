"""Pure audit rules: clipping client text, the resource a denied route names, and the failure
rate limit (per key, in all, refilled over time, bounded in memory)."""

from __future__ import annotations

import uuid

import pytest

from brokkr.broker.domain import audit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curl/8.0", "curl/8.0"),
        ("a\nb", "a\\nb"),
        ("nul\x00", "nul\\x00"),
        ("sep\u2028", "sep\\u2028"),
        ("x" * 300, "x" * (audit.MAX_TEXT_BYTES - 3) + "\u2026"),
    ],
)
def test_clip_keeps_one_printable_line_of_bounded_size(text: str, expected: str) -> None:
    assert audit.clip(text) == expected
    assert len(audit.clip(text).encode()) <= audit.MAX_TEXT_BYTES


def test_clip_never_splits_a_character() -> None:
    clipped = audit.clip("é" * 200)
    assert clipped.endswith("\u2026") and len(clipped.encode()) <= audit.MAX_TEXT_BYTES
    assert set(clipped[:-1]) == {"é"}


@pytest.mark.parametrize(
    ("route", "resource_type"),
    [
        ("/api/v1/stacks/{id:uuid}/labels", "stack"),
        ("/api/v1/agents/{id:uuid}/targets/{stack_id:uuid}", "agent"),
        ("/api/v1/generators/{id:uuid}/rotate-pak", "generator"),
        ("/api/v1/deployment-objects/{id:uuid}", "deployment_object"),
        ("/api/v1/stacks", "stack"),
        ("/api/v1/admin/config/reload", "system"),
    ],
)
def test_resource_of_a_route(route: str, resource_type: str) -> None:
    some_id = uuid.uuid4()
    assert audit.resource_of(route, {"id": some_id}) == (resource_type, some_id)
    assert audit.resource_of(route, {}) == (resource_type, None)


def allow(throttle: audit.Throttle, *keys: str, now: float, max_keys: int = 100) -> bool:
    return throttle.allow(
        [("auth.failed", key) for key in keys],
        now=now,
        per_minute=3,
        per_minute_total=5,
        max_keys=max_keys,
    )


def test_each_key_has_its_allowance_refilled_over_time() -> None:
    throttle = audit.Throttle()
    assert [allow(throttle, "source:a", now=0) for _ in range(4)] == [True, True, True, False]
    assert allow(throttle, "source:b", now=0)
    # 3 a minute: one more token after 20 s.
    assert allow(throttle, "source:a", now=20) and not allow(throttle, "source:a", now=20)


def test_a_record_spends_from_every_key_it_names() -> None:
    throttle = audit.Throttle()
    for source in ("source:a", "source:b", "source:c"):
        assert allow(throttle, source, "key:K", now=0)
    assert not allow(throttle, "source:d", "key:K", now=0)
    # Refused: nothing was spent from source d.
    assert allow(throttle, "source:d", now=0)


def test_everything_together_has_its_own_allowance() -> None:
    throttle = audit.Throttle()
    allowed = [allow(throttle, f"source:{index}", now=0) for index in range(8)]
    assert allowed == [True] * 5 + [False] * 3


def test_memory_is_bounded_by_max_keys() -> None:
    throttle = audit.Throttle()
    for index in range(1000):
        allow(throttle, f"source:{index}", now=index * 60.0, max_keys=10)
    assert len(throttle) == 10
