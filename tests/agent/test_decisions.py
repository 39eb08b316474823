"""Which deployment objects the agent acts on (pure): only the newest object of each stack,
in the broker's order (newest first)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

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
