"""Which deployment objects to act on. Pure: no I/O, no clock reads.

The broker may return several objects of one stack (``mode=full`` after a quick succession of
deployments); only the newest of each stack is applied, as fleet acts only on the current
DeploymentID. Retries and their backoff are the runtime loop's (``backoff.RetryTracker``).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from brokkr.common import wire


def latest_per_stack(
    target: Iterable[wire.DeploymentObject],
) -> list[wire.DeploymentObject]:
    """The newest deployment object of each stack, newest stack first: the broker's order
    (sequence_id descending)."""
    latest: dict[UUID, wire.DeploymentObject] = {}
    for obj in target:
        current = latest.get(obj.stack_id)
        if current is None or obj.sequence_id > current.sequence_id:
            latest[obj.stack_id] = obj
    return sorted(latest.values(), key=lambda obj: obj.sequence_id, reverse=True)
