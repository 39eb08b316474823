"""The pure parts of telemetry shipping: stack ownership, the owner cache's bounds, event
bodies, log lines (bounded, their own timestamps) and the per-container line budget."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from brokkr.agent.manifests import OWNER_ID_ANNOTATION, STACK_ANNOTATION
from brokkr.agent.telemetry import (
    MAX_LINE_BYTES,
    MISS,
    Gap,
    LineBudget,
    LineSplitter,
    Owner,
    OwnerCache,
    from_nanoseconds,
    involved_object,
    k8s_event_body,
    observed_at,
    own_stack,
    owner_references,
    since_time,
    split_log_line,
)

AGENT, STACK = uuid4(), uuid4()
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_own_stack_is_this_agent_s_stamped_object_only() -> None:
    def obj(**annotations: str) -> dict[str, object]:
        return {"metadata": {"annotations": annotations}}

    ours = obj(**{STACK_ANNOTATION: str(STACK), OWNER_ID_ANNOTATION: str(AGENT)})
    assert own_stack(ours, AGENT) == Owner(STACK, stream_logs=False)
    theirs = obj(**{STACK_ANNOTATION: str(STACK), OWNER_ID_ANNOTATION: str(uuid4())})
    assert own_stack(theirs, AGENT) is None
    garbled = obj(**{STACK_ANNOTATION: "not-a-uuid", OWNER_ID_ANNOTATION: str(AGENT)})
    assert own_stack(garbled, AGENT) is None
    opted = obj(
        **{
            STACK_ANNOTATION: str(STACK),
            OWNER_ID_ANNOTATION: str(AGENT),
            "brokkr.io/stream-logs": "true",
        }
    )
    assert own_stack(opted, AGENT) == Owner(STACK, stream_logs=True)


def test_owner_references_controller_first_and_complete_only() -> None:
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1"}
    controller = {**ref, "name": "b", "uid": "2", "controller": True}
    broken = {"apiVersion": "v1", "kind": "X", "name": "c"}
    obj = {"metadata": {"ownerReferences": [ref, broken, controller]}}
    assert [r["uid"] for r in owner_references(obj)] == ["2", "1"]


def test_owner_cache_is_bounded_and_forgets() -> None:
    clock = Clock()
    cache = OwnerCache(capacity=3, ttl=300, clock=clock)
    owner = Owner(STACK, stream_logs=False)
    for uid in "abcd":
        cache.put(uid, owner)
    assert len(cache) == 3
    assert cache.get("a") is MISS  # the least recently used went
    cache.get("b")  # b used: c is now the oldest
    cache.put("e", None)
    assert cache.get("c") is MISS
    assert cache.get("e") is None  # "not ours" is an answer too
    assert cache.get("b") == owner
    clock.now += 300
    assert cache.get("b") is MISS
    assert len(cache) <= 3


def test_event_body() -> None:
    event = {
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "p",
            "namespace": "default",
            "uid": "u",
        },
        "reason": "r" * 1000,
        "message": "m" * 10_000,
        "reportingComponent": "kubelet",
        "eventTime": "2024-05-01T11:00:00.123456789Z",
        "lastTimestamp": "2024-05-01T10:00:00Z",
    }
    involved = involved_object(event)
    assert involved is not None and involved.namespace == "default"
    body = k8s_event_body(event, involved, agent_id=AGENT, stack_id=STACK, now=NOW)
    assert body.observed_at == datetime(2024, 5, 1, 11, 0, 0, 123456, tzinfo=UTC)
    assert (len(body.reason), len(body.message)) == (256, 4096)
    assert (body.event_type, body.source) == ("Normal", "kubelet")
    assert involved_object({"involvedObject": {"kind": "Pod", "name": "p"}}) is None


def test_observed_at_order() -> None:
    assert observed_at({}, NOW) == NOW
    assert observed_at({"firstTimestamp": "2024-01-01T00:00:00Z"}, NOW).year == 2024
    repeated = {
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "series": {"lastObservedTime": "2024-03-01T00:00:00.000000Z"},
    }
    assert observed_at(repeated, NOW).month == 3
    assert observed_at({"lastTimestamp": "garbage"}, NOW) == NOW


def test_lines_are_bounded_however_the_stream_is_cut() -> None:
    splitter = LineSplitter(max_bytes=8)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\r\nde") == [b"abc"]
    assert splitter.feed(b"fghijklmnop") == [b"defghijk"]  # cut, the rest discarded
    assert splitter.feed(b"qrs\nt\n") == [b"t"]
    assert splitter.feed(b"tail") == []
    assert splitter.rest() == b"tail"
    assert splitter.rest() is None


def test_log_line_timestamps_and_length() -> None:
    stamp, text = split_log_line(b"2024-05-01T12:00:00.123456789Z hello world")
    assert text == "hello world"
    assert stamp is not None and stamp % 1_000_000_000 == 123456789
    assert from_nanoseconds(stamp) == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert since_time(stamp) == "2024-05-01T12:00:00Z"
    assert split_log_line(b"no stamp here") == (None, "no stamp here")
    _, long = split_log_line(b"2024-05-01T12:00:00Z " + b"x" * (MAX_LINE_BYTES * 2))
    assert len(long) == MAX_LINE_BYTES
    _, broken = split_log_line(b"2024-05-01T12:00:00Z \xff ok")
    assert broken == "\ufffd ok"


def test_line_budget_counts_every_dropped_line() -> None:
    clock = Clock()
    budget = LineBudget(per_second=2, clock=clock)
    written = [datetime(2024, 5, 1, 12, 0, i, tzinfo=UTC) for i in range(6)]
    assert [budget.admit(w) for w in written[:5]] == [
        (True, None),
        (True, None),
        (False, None),
        (False, None),
        (False, None),
    ]
    assert budget.due() is None  # the second has not passed
    clock.now += 1.0
    assert budget.admit(written[5]) == (True, Gap(3, written[2]))
    clock.now += 1.0
    assert budget.due() is None  # nothing dropped in that second
    for w in written:
        budget.admit(w)
    clock.now += 1.0
    assert budget.due() == Gap(4, written[2])
    assert budget.due() is None
