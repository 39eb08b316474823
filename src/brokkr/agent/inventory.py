"""Pure per-stack inventory: what the agent applied for a stack, and what pruning may delete.

The inventory is kept in a ConfigMap (one per agent and stack) so pruning touches only the kinds
and objects this agent applied, instead of listing every type cluster-wide (flaw 7). No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from uuid import UUID

import msgspec

from brokkr.agent import manifests
from brokkr.agent.manifests import ObjectRef

# The ConfigMap data key holding the inventory JSON.
DATA_KEY = "inventory.json"
# Bumped on an incompatible change; an unknown version is refused rather than misread.
FORMAT_VERSION = 1


class InventoryError(ValueError):
    """A stored inventory cannot be read."""


class Inventory(msgspec.Struct, frozen=True, kw_only=True):
    version: int = FORMAT_VERSION
    stack_id: UUID
    deployment_object_id: UUID
    checksum: str
    applied_at: datetime
    objects: tuple[ObjectRef, ...]
    # Namespaces this agent created (they did not exist before its first apply): the only
    # Namespaces it may ever delete (flaw 4).
    created_namespaces: tuple[str, ...] = ()


def configmap_name(*, owner_id: UUID, stack_id: UUID) -> str:
    """Per agent as well as per stack: two agents may share a cluster and a stack."""
    return f"brokkr-inventory-{owner_id}-{stack_id}"


def configmap_labels(*, owner_id: UUID, stack_id: UUID) -> dict[str, str]:
    """Lets the agent list its inventories at start-up with one label selector."""
    return {manifests.OWNER_ID_LABEL: str(owner_id), manifests.STACK_ID_LABEL: str(stack_id)}


def record(
    previous: Inventory | None,
    *,
    stack_id: UUID,
    deployment_object_id: UUID,
    checksum: str,
    applied_at: datetime,
    applied: Iterable[ObjectRef],
    newly_created_namespaces: Iterable[str] = (),
    undeleted: Iterable[ObjectRef] = (),
) -> Inventory:
    """The inventory after an apply: ``applied`` plus the prune leftovers (``undeleted``, so a
    later prune retries them), keeping what was created by this agent and is still tracked."""
    objects = {ref.key: ref for ref in (*undeleted, *applied)}
    tracked_namespaces = {ref.name for ref in objects.values() if _is_namespace(ref)}
    created = set(newly_created_namespaces)
    if previous is not None:
        created |= set(previous.created_namespaces)
    return Inventory(
        stack_id=stack_id,
        deployment_object_id=deployment_object_id,
        checksum=checksum,
        applied_at=applied_at,
        objects=tuple(sorted(objects.values(), key=lambda ref: ref.key)),
        created_namespaces=tuple(sorted(created & tracked_namespaces)),
    )


def to_configmap_data(inventory: Inventory) -> dict[str, str]:
    """Deterministic (sorted keys), so an unchanged inventory is an unchanged ConfigMap."""
    return {DATA_KEY: msgspec.json.encode(inventory, order="sorted").decode()}


def from_configmap_data(data: Mapping[str, str]) -> Inventory:
    raw = data.get(DATA_KEY)
    if raw is None:
        raise InventoryError(f"inventory ConfigMap has no {DATA_KEY!r} key")
    try:
        version = msgspec.json.decode(raw, type=_Versioned).version
        if version != FORMAT_VERSION:
            raise InventoryError(f"unsupported inventory format version {version}")
        return msgspec.json.decode(raw, type=Inventory)
    except msgspec.DecodeError as exc:
        raise InventoryError(f"unreadable inventory: {exc}") from exc


class _Versioned(msgspec.Struct):
    version: int


def plan_prune(
    previous: Inventory | None,
    desired: Collection[ObjectRef],
    *,
    owned: Callable[[ObjectRef], bool],
) -> list[ObjectRef]:
    """Objects to delete after applying ``desired`` (empty for a deletion marker), dependents first.

    Only what the previous inventory recorded and ``desired`` no longer holds, only while the
    live object's owner annotation is this agent (``owned`` is false for a gone object),
    and never a Namespace this agent did not create.
    """
    if previous is None:
        return []
    keep = {ref.key for ref in desired}
    created = set(previous.created_namespaces)
    doomed = [
        ref
        for ref in previous.objects
        if ref.key not in keep and (not _is_namespace(ref) or ref.name in created) and owned(ref)
    ]
    return manifests.order_for_deletion(doomed)


def _is_namespace(ref: ObjectRef) -> bool:
    return ref.kind == "Namespace" and ref.group == ""
