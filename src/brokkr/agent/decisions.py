"""Pure per-stack decisions: compare the target state with what this agent last applied.

Fleet's rule in our terms: act when the desired deployment object differs from the applied one
(fleet's DeploymentID vs AppliedDeploymentID). On top: a deletion marker tears the stack down
(D13), an unchanged stack is re-applied every ``reconcile_interval`` to correct drift, and a
failing deployment object waits out its backoff (D23, flaw 5). No I/O, no clock reads.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from brokkr.agent.backoff import RetryTracker
from brokkr.common import wire


class Action(enum.StrEnum):
    APPLY = "apply"
    DELETE_STACK = "delete-stack"
    SKIP = "skip"
    RETRY_LATER = "retry-later"


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """What this agent last applied successfully for one stack."""

    deployment_object_id: UUID
    checksum: str
    applied_at: datetime


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    action: Action
    deployment_object: wire.DeploymentObject
    # Why, for the log line: "new stack", "changed", "drift re-apply", ...
    reason: str
    # Set for RETRY_LATER: when the backoff ends.
    not_before: datetime | None = None

    @property
    def stack_id(self) -> UUID:
        return self.deployment_object.stack_id


def latest_per_stack(
    target: Iterable[wire.DeploymentObject],
) -> list[wire.DeploymentObject]:
    """The newest deployment object of each stack (``mode=full`` may return several), newest
    stack first: the broker's order (sequence_id descending)."""
    latest: dict[UUID, wire.DeploymentObject] = {}
    for obj in target:
        current = latest.get(obj.stack_id)
        if current is None or obj.sequence_id > current.sequence_id:
            latest[obj.stack_id] = obj
    return sorted(latest.values(), key=lambda obj: obj.sequence_id, reverse=True)


def decide(
    target: Iterable[wire.DeploymentObject],
    applied: Mapping[UUID, Applied],
    *,
    retries: RetryTracker[UUID],
    now: datetime,
    reconcile_interval: timedelta,
) -> list[Decision]:
    """One decision per stack in ``target``. ``applied`` is keyed by stack id; ``retries`` by
    deployment object id.

    Stacks in ``applied`` but absent from ``target`` are left alone: only a deletion marker
    authorises removing a stack's objects (D13, D23 safe by default).
    """
    return [
        _decide_one(obj, applied.get(obj.stack_id), retries, now, reconcile_interval)
        for obj in latest_per_stack(target)
    ]


def _decide_one(
    obj: wire.DeploymentObject,
    last: Applied | None,
    retries: RetryTracker[UUID],
    now: datetime,
    reconcile_interval: timedelta,
) -> Decision:
    if not retries.is_due(obj.id, now=now):
        return Decision(
            action=Action.RETRY_LATER,
            deployment_object=obj,
            reason=f"backing off after {retries.failures(obj.id)} failure(s)",
            not_before=retries.next_attempt(obj.id),
        )
    # A new deployment object with unchanged content still needs applying: its id goes into
    # the ownership annotations and its SUCCESS event is what the broker waits for.
    same = last is not None and (last.deployment_object_id, last.checksum) == (
        obj.id,
        obj.yaml_checksum,
    )
    if obj.is_deletion_marker:
        if same:
            return Decision(action=Action.SKIP, deployment_object=obj, reason="already deleted")
        return Decision(action=Action.DELETE_STACK, deployment_object=obj, reason="stack deleted")
    if last is None:
        return Decision(action=Action.APPLY, deployment_object=obj, reason="new stack")
    if not same:
        return Decision(action=Action.APPLY, deployment_object=obj, reason="changed")
    if now - last.applied_at >= reconcile_interval:
        return Decision(action=Action.APPLY, deployment_object=obj, reason="drift re-apply")
    return Decision(action=Action.SKIP, deployment_object=obj, reason="unchanged")
