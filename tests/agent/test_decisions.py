"""Per-stack decisions from the target state and what this agent last applied (pure).

Covers: new stacks and changed deployment objects apply (also a new object with an unchanged
checksum); unchanged stacks skip until ``reconcile_interval`` has passed, then re-apply (drift);
deletion markers delete the stack once; failing objects wait out their backoff; only the newest
object per stack counts, in the broker's order; untargeted stacks are left alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from brokkr.agent import decisions
from brokkr.agent.backoff import RetryTracker
from brokkr.agent.decisions import Action, Applied
from brokkr.common import wire

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
INTERVAL = timedelta(seconds=300)
STACK_A = UUID("00000000-0000-0000-0000-0000000000a1")
STACK_B = UUID("00000000-0000-0000-0000-0000000000b1")


def deployment_object(
    number: int, *, stack: UUID = STACK_A, checksum: str = "sum", marker: bool = False
) -> wire.DeploymentObject:
    return wire.DeploymentObject(
        id=UUID(int=number),
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
        sequence_id=number,
        stack_id=stack,
        yaml_content="" if marker else "apiVersion: v1\n",
        yaml_checksum=checksum,
        submitted_at=NOW,
        is_deletion_marker=marker,
    )


def applied(number: int, *, checksum: str = "sum", age: float = 0.0) -> Applied:
    return Applied(
        deployment_object_id=UUID(int=number),
        checksum=checksum,
        applied_at=NOW - timedelta(seconds=age),
    )


def tracker() -> RetryTracker[UUID]:
    return RetryTracker(minimum=10.0, maximum=60.0, rand=lambda: 1.0)


@pytest.mark.parametrize(
    ("target", "last", "action", "reason"),
    [
        (deployment_object(1), None, Action.APPLY, "new stack"),
        (deployment_object(2), applied(1), Action.APPLY, "changed"),
        (deployment_object(2), applied(1, checksum="other"), Action.APPLY, "changed"),
        (deployment_object(1, checksum="new"), applied(1), Action.APPLY, "changed"),
        (deployment_object(1), applied(1, age=10), Action.SKIP, "unchanged"),
        (deployment_object(1), applied(1, age=299.9), Action.SKIP, "unchanged"),
        (deployment_object(1), applied(1, age=300), Action.APPLY, "drift re-apply"),
        (deployment_object(3, marker=True), applied(2), Action.DELETE_STACK, "stack deleted"),
        (deployment_object(3, marker=True), None, Action.DELETE_STACK, "stack deleted"),
        # A marker is never re-applied for drift: there is nothing left to drift.
        (deployment_object(3, marker=True), applied(3, age=9999), Action.SKIP, "already deleted"),
    ],
)
def test_decision_per_stack(
    target: wire.DeploymentObject, last: Applied | None, action: Action, reason: str
) -> None:
    last_applied = {} if last is None else {STACK_A: last}
    (decision,) = decisions.decide(
        [target], last_applied, retries=tracker(), now=NOW, reconcile_interval=INTERVAL
    )
    assert (decision.action, decision.reason, decision.stack_id) == (action, reason, STACK_A)
    assert decision.deployment_object == target


@pytest.mark.parametrize("marker", [False, True])
def test_failing_deployment_object_waits_out_its_backoff(marker: bool) -> None:
    retries = tracker()
    target = deployment_object(5, marker=marker)
    retries.failed(target.id, now=NOW)

    def decide(at: datetime) -> decisions.Decision:
        (decision,) = decisions.decide(
            [target], {}, retries=retries, now=at, reconcile_interval=INTERVAL
        )
        return decision

    waiting = decide(NOW + timedelta(seconds=9))
    assert (waiting.action, waiting.not_before) == (
        Action.RETRY_LATER,
        NOW + timedelta(seconds=10),
    )
    assert waiting.reason == "backing off after 1 failure(s)"
    assert decide(NOW + timedelta(seconds=10)).action == (
        Action.DELETE_STACK if marker else Action.APPLY
    )


def test_backoff_of_a_superseded_object_does_not_delay_its_successor() -> None:
    retries = tracker()
    retries.failed(UUID(int=1), now=NOW)
    (decision,) = decisions.decide(
        [deployment_object(2)], {}, retries=retries, now=NOW, reconcile_interval=INTERVAL
    )
    assert decision.action == Action.APPLY


def test_newest_object_per_stack_in_broker_order() -> None:
    target = [
        deployment_object(1, stack=STACK_A),
        deployment_object(4, stack=STACK_B),
        deployment_object(3, stack=STACK_A),
        deployment_object(2, stack=STACK_B),
    ]
    result = decisions.decide(target, {}, retries=tracker(), now=NOW, reconcile_interval=INTERVAL)
    assert [(d.stack_id, d.deployment_object.sequence_id) for d in result] == [
        (STACK_B, 4),
        (STACK_A, 3),
    ]


def test_stacks_missing_from_the_target_state_are_left_alone() -> None:
    result = decisions.decide(
        [], {STACK_A: applied(1)}, retries=tracker(), now=NOW, reconcile_interval=INTERVAL
    )
    assert result == []
