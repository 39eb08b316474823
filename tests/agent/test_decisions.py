"""Which deployment objects the agent acts on (pure): only the newest object of each stack,
in the broker's order (newest first); which outcomes it posts: changes, not repetitions."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from brokkr.agent import decisions
from brokkr.common import wire

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
STACK_A = UUID("00000000-0000-0000-0000-0000000000a1")
STACK_B = UUID("00000000-0000-0000-0000-0000000000b1")


def deployment_object(number: int, *, stack: UUID) -> wire.DeploymentObject:
    return wire.DeploymentObject(
        id=UUID(int=number),
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
        sequence_id=number,
        stack_id=stack,
        yaml_content="apiVersion: v1\n",
        yaml_checksum="sum",
        submitted_at=NOW,
        is_deletion_marker=False,
    )


def test_newest_object_per_stack_in_broker_order() -> None:
    target = [
        deployment_object(1, stack=STACK_A),
        deployment_object(4, stack=STACK_B),
        deployment_object(3, stack=STACK_A),
        deployment_object(2, stack=STACK_B),
    ]
    result = decisions.latest_per_stack(target)
    assert [(item.stack_id, item.sequence_id) for item in result] == [(STACK_B, 4), (STACK_A, 3)]


def test_nothing_in_nothing_out() -> None:
    assert decisions.latest_per_stack([]) == []


OK: decisions.Posted = ("SUCCESS", "applied 1 object(s), pruned 0")
BAD: decisions.Posted = ("FAILURE", "Invalid: bad")


@pytest.mark.parametrize(
    ("last", "current", "changed", "acknowledge", "worth"),
    [
        # A success: posted when it changed the cluster, whatever came before.
        (None, OK, True, False, True),
        (OK, OK, True, False, True),
        # An unchanged re-apply: posted only as the first answer the broker awaits, or a recovery.
        (None, OK, False, True, True),
        (None, OK, False, False, False),
        (OK, OK, False, True, False),
        (BAD, OK, False, False, True),
        # A failure: posted when it differs from the last post.
        (None, BAD, True, False, True),
        (BAD, BAD, True, True, False),
        (("FAILURE", "Forbidden: other"), BAD, True, False, True),
        (OK, BAD, True, False, True),
    ],
)
def test_worth_posting_reports_changes_not_repetitions(
    last: decisions.Posted | None,
    current: decisions.Posted,
    changed: bool,
    acknowledge: bool,
    worth: bool,
) -> None:
    assert decisions.worth_posting(last, current, changed=changed, acknowledge=acknowledge) is worth
