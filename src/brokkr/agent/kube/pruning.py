"""Delete what a stack no longer holds: dependents first, only objects whose live owner annotation
is this agent, never a Namespace the agent did not create (D23, flaws 4 and 7).

The decision is ``inventory.plan_prune``; this module fetches the live owners it needs and
carries out the deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from uuid import UUID

import msgspec

from brokkr.agent import inventory, manifests
from brokkr.agent.inventory import Inventory
from brokkr.agent.kube.applying import Objects
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.manifests import ObjectRef

log = logging.getLogger(__name__)


class PruneResult(msgspec.Struct, frozen=True, kw_only=True):
    deleted: tuple[ObjectRef, ...] = ()
    # Objects whose delete failed (still owned, to be retried by the next prune), with why.
    failed: tuple[tuple[ObjectRef, str], ...] = ()


async def prune(
    objects: Objects,
    previous: Inventory | None,
    desired: Collection[ObjectRef],
    *,
    owner_id: UUID,
) -> PruneResult:
    """Delete ``previous`` objects not in ``desired`` (empty: the whole stack).

    A failed delete does not stop the others; retryable errors of the owner lookups propagate.
    """
    if previous is None:
        return PruneResult()
    keep = {ref.key for ref in desired}
    owned: set[tuple[str, str, str, str]] = set()
    for ref in previous.objects:
        if ref.key not in keep:
            live = await objects.get(ref)
            if live is not None and manifests.is_owned_by(live, owner_id):
                owned.add(ref.key)
    doomed = inventory.plan_prune(previous, desired, owned=lambda ref: ref.key in owned)
    deleted: list[ObjectRef] = []
    failed: list[tuple[ObjectRef, str]] = []
    for ref in doomed:
        try:
            await objects.delete(ref)
        except KubeError as exc:
            log.warning("pruning %s %s/%s failed: %s", ref.kind, ref.namespace, ref.name, exc)
            failed.append((ref, str(exc)))
        else:
            deleted.append(ref)
    return PruneResult(deleted=tuple(deleted), failed=tuple(failed))
