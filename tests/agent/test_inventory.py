"""Per-stack inventory and prune planning (pure; D23, flaws 4 and 7).

Covers the ConfigMap round trip (deterministic JSON, version and corruption errors), naming and
labels, recording an apply (created namespaces carried while tracked, prune leftovers kept), and
``plan_prune``: previous − desired by version-independent key, owner check against the live
object, Namespaces only when this agent created them, dependents first, markers delete all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from brokkr.agent import inventory, manifests
from brokkr.agent.inventory import Inventory
from brokkr.agent.manifests import ObjectRef

STACK = UUID("00000000-0000-0000-0000-00000000000a")
AGENT = UUID("00000000-0000-0000-0000-00000000000b")
OTHER_AGENT = "00000000-0000-0000-0000-0000000000ff"
DO = UUID("00000000-0000-0000-0000-00000000000c")
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

NS_OURS = ObjectRef(api_version="v1", kind="Namespace", namespace="", name="ours")
NS_THEIRS = ObjectRef(api_version="v1", kind="Namespace", namespace="", name="theirs")
CM = ObjectRef(api_version="v1", kind="ConfigMap", namespace="ours", name="cm")
DEPLOY = ObjectRef(api_version="apps/v1", kind="Deployment", namespace="ours", name="web")
DEPLOY_V1BETA1 = ObjectRef(
    api_version="apps/v1beta1", kind="Deployment", namespace="ours", name="web"
)
FOREIGN = ObjectRef(api_version="v1", kind="Secret", namespace="ours", name="taken-over")

PREVIOUS = Inventory(
    stack_id=STACK,
    deployment_object_id=DO,
    checksum="old",
    applied_at=WHEN,
    objects=(NS_OURS, NS_THEIRS, CM, DEPLOY, FOREIGN),
    created_namespaces=("ours",),
)


def owned(ref: ObjectRef) -> bool:
    return ref != FOREIGN


def test_configmap_round_trip_is_deterministic() -> None:
    data = inventory.to_configmap_data(PREVIOUS)
    assert list(data) == [inventory.DATA_KEY]
    assert inventory.from_configmap_data(data) == PREVIOUS
    assert inventory.to_configmap_data(inventory.from_configmap_data(data)) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no 'inventory.json' key"),
        ({inventory.DATA_KEY: "{not json"}, "unreadable inventory"),
        ({inventory.DATA_KEY: '{"version": 1}'}, "unreadable inventory"),
        ({inventory.DATA_KEY: '{"version": 99}'}, "unsupported inventory format version 99"),
    ],
)
def test_bad_configmap_data_is_refused(data: dict[str, str], message: str) -> None:
    with pytest.raises(inventory.InventoryError, match=message):
        inventory.from_configmap_data(data)


def test_configmap_is_named_and_labelled_per_agent_and_stack() -> None:
    name = inventory.configmap_name(owner_id=AGENT, stack_id=STACK)
    assert str(AGENT) in name and str(STACK) in name and len(name) <= 253
    assert inventory.configmap_labels(owner_id=AGENT, stack_id=STACK) == {
        manifests.OWNER_ID_LABEL: str(AGENT),
        manifests.STACK_ID_LABEL: str(STACK),
    }


@pytest.mark.parametrize(
    ("previous", "applied", "new_namespaces", "undeleted", "objects", "created"),
    [
        (None, [CM, NS_OURS], ["ours"], [], [CM, NS_OURS], ("ours",)),
        # A pre-existing namespace in the stack is tracked but never counted as created.
        (None, [NS_THEIRS], [], [], [NS_THEIRS], ()),
        # Created earlier and still applied: still ours.
        (PREVIOUS, [NS_OURS, DEPLOY], [], [], [DEPLOY, NS_OURS], ("ours",)),
        # Pruned: no longer tracked, so no longer listed as created.
        (PREVIOUS, [DEPLOY], [], [], [DEPLOY], ()),
        # A prune that failed keeps the object (and its created flag) for the next prune.
        (PREVIOUS, [DEPLOY], [], [NS_OURS], [DEPLOY, NS_OURS], ("ours",)),
        # Same object under a new apiVersion: one entry, the applied version.
        (PREVIOUS, [DEPLOY_V1BETA1], [], [DEPLOY], [DEPLOY_V1BETA1], ()),
    ],
)
def test_record_tracks_objects_and_created_namespaces(
    previous: Inventory | None,
    applied: list[ObjectRef],
    new_namespaces: list[str],
    undeleted: list[ObjectRef],
    objects: list[ObjectRef],
    created: tuple[str, ...],
) -> None:
    recorded = inventory.record(
        previous,
        stack_id=STACK,
        deployment_object_id=DO,
        checksum="new",
        applied_at=WHEN,
        applied=applied,
        newly_created_namespaces=new_namespaces,
        undeleted=undeleted,
    )
    assert recorded.objects == tuple(sorted(objects, key=lambda ref: ref.key))
    assert recorded.created_namespaces == created
    assert (recorded.checksum, recorded.applied_at) == ("new", WHEN)


@pytest.mark.parametrize(
    ("previous", "desired", "expected"),
    [
        (None, [], []),
        (PREVIOUS, [NS_OURS, NS_THEIRS, CM, DEPLOY, FOREIGN], []),
        # Dropped from the desired state, owned by us: deleted.
        (PREVIOUS, [NS_OURS, NS_THEIRS, DEPLOY, FOREIGN], [CM]),
        # A version change is not a removal.
        (PREVIOUS, [NS_OURS, NS_THEIRS, CM, DEPLOY_V1BETA1], []),
        # Deletion marker: everything we own and created, dependents first; never the
        # pre-existing namespace, never another agent's object.
        (PREVIOUS, [], [DEPLOY, CM, NS_OURS]),
    ],
)
def test_plan_prune_deletes_only_what_this_agent_owns(
    previous: Inventory | None, desired: list[ObjectRef], expected: list[ObjectRef]
) -> None:
    assert inventory.plan_prune(previous, desired, owned=owned) == expected


def test_plan_prune_skips_objects_already_gone() -> None:
    assert inventory.plan_prune(PREVIOUS, [], owned=lambda ref: False) == []
