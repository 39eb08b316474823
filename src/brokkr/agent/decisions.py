"""Which deployment objects to act on, and which outcomes to post. Pure: no I/O, no clock reads.

The broker may return several objects of one stack (``mode=full`` after a quick succession of
deployments); only the newest of each stack is applied, as fleet acts only on the current
DeploymentID. Retries and their backoff are the runtime loop's (``backoff.RetryTracker``).
Events report changes, not repetitions (``worth_posting``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from uuid import UUID

from brokkr.common import wire

# What the agent posts for a deployment object: its status and (clipped) message.
Posted = tuple[Literal["SUCCESS", "FAILURE"], str | None]


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


def worth_posting(
    last: Posted | None, current: Posted, *, changed: bool, acknowledge: bool
) -> bool:
    """Whether to post ``current``, given what was ``last`` posted for the deployment object.

    A failure is posted when it differs from the last post (a new reason); a success when it
    ``changed`` the cluster, recovers from a posted failure, or is the first one the broker
    awaits (``acknowledge``: an incremental answer, D12/D13). A periodic re-apply that changed
    nothing and a retry failing the same way post nothing.
    """
    if current[0] == "FAILURE":
        return last != current
    recovered = last is not None and last[0] != "SUCCESS"
    return changed or recovered or (last is None and acknowledge)
