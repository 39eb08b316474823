"""Unassignment is explicit (issue 10, D13 extended): an agent that stops being associated with a
live stack is served that stack's deletion marker until it reports SUCCESS for it.

Covers every way an association ends (target removed, agent or stack label removed, agent or
stack annotation removed, an annotation value changed) on both databases; an association still
held by another path owes nothing; the marker is served to the agents that lost the stack only,
is never the stack's newest object for the agents still associated, is not listed among the
stack's objects, is readable by its recipient and stays until SUCCESS; a stack without objects
owes nothing; re-association before the acknowledgement cancels the marker (the agent still
holds the objects) and after it serves the current object again (the agent removed them), also
when the acknowledgement arrives late; a later stack deletion still reaches the agents owed a
marker; deactivation pauses and unassigns nothing; each unassignment is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.broker.api.test_target_state import (
    annotate_agent,
    annotate_stack,
    assert_marker,
    create_stack,
    delete_stack,
    ids,
    label_agent,
    label_stack,
    post_object,
    report,
    state,
    target,
)
from tests.broker.conftest import Api, auth


@dataclass
class Scene:
    api: Api
    agent_id: str
    agent_pak: str
    stack: dict[str, Any]
    obj: dict[str, Any]

    async def delete(self, path: str) -> None:
        response = await self.api.client.delete(f"/api/v1{path}", headers=self.api.admin)
        assert response.status_code == 204, response.text

    async def state(self, mode: str | None = None) -> list[Any]:
        return await state(self.api, self.agent_id, self.agent_pak, mode=mode)

    async def report(self, object_id: str, status: str = "SUCCESS") -> None:
        await report(self.api, self.agent_id, self.agent_pak, object_id, status)


async def scene(api: Api, name: str = "agent-1") -> Scene:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent(name)
    stack = await create_stack(api, generator_pak)
    obj = await post_object(api, stack["id"])
    return Scene(api, agent["id"], agent_pak, stack, obj)


async def by_target(s: Scene) -> None:
    await target(s.api, s.agent_id, s.stack["id"])


async def by_label(s: Scene) -> None:
    await label_agent(s.api, s.agent_id, "env:prod")
    await label_stack(s.api, s.stack["id"], "env:prod")


async def by_annotation(s: Scene) -> None:
    await annotate_agent(s.api, s.agent_id, "region", "eu")
    await annotate_stack(s.api, s.stack["id"], "region", "eu")


async def change_annotation_value(s: Scene) -> None:
    await s.delete(f"/agents/{s.agent_id}/annotations/region")
    await annotate_agent(s.api, s.agent_id, "region", "us")


Step = Callable[[Scene], Awaitable[None]]
WAYS: dict[str, tuple[Step, Step]] = {
    "target-removed": (
        by_target,
        lambda s: s.delete(f"/agents/{s.agent_id}/targets/{s.stack['id']}"),
    ),
    "agent-label-removed": (by_label, lambda s: s.delete(f"/agents/{s.agent_id}/labels/env:prod")),
    "stack-label-removed": (
        by_label,
        lambda s: s.delete(f"/stacks/{s.stack['id']}/labels/env:prod"),
    ),
    "agent-annotation-removed": (
        by_annotation,
        lambda s: s.delete(f"/agents/{s.agent_id}/annotations/region"),
    ),
    "stack-annotation-removed": (
        by_annotation,
        lambda s: s.delete(f"/stacks/{s.stack['id']}/annotations/region"),
    ),
    "annotation-value-changed": (by_annotation, change_annotation_value),
}


@pytest.mark.parametrize("way", list(WAYS))
async def test_every_way_of_losing_a_stack_serves_its_marker_until_success(
    api: Api, way: str
) -> None:
    associate, unassociate = WAYS[way]
    s = await scene(api)
    await associate(s)
    await s.report(s.obj["id"])
    await unassociate(s)
    marker = assert_marker(await s.state(), s.stack["id"])
    assert await s.state(mode="full") == [marker]
    assert marker["sequence_id"] > s.obj["sequence_id"]
    await s.report(marker["id"], "FAILURE")
    assert await s.state() == [marker]
    await s.report(marker["id"])
    assert await s.state() == []
    assert await s.state(mode="full") == []


@pytest.mark.parametrize("way", list(WAYS))
async def test_an_association_kept_by_another_path_owes_nothing(api: Api, way: str) -> None:
    associate, unassociate = WAYS[way]
    s = await scene(api)
    await associate(s)
    await label_agent(api, s.agent_id, "also:here")
    await label_stack(api, s.stack["id"], "also:here")
    await unassociate(s)
    assert ids(await s.state(mode="full")) == [s.obj["id"]]


async def test_only_the_agent_that_lost_the_stack_gets_the_marker(api: Api) -> None:
    s = await scene(api)
    stayer, stayer_pak = await api.create_agent("stayer")
    await by_label(s)
    await label_agent(api, stayer["id"], "env:prod")
    await s.delete(f"/agents/{s.agent_id}/labels/env:prod")
    marker = assert_marker(await s.state(), s.stack["id"])
    # The stayer is served the stack's object, never the marker, also after a new revision.
    assert ids(await state(api, stayer["id"], stayer_pak, mode="full")) == [s.obj["id"]]
    newer = await post_object(api, s.stack["id"], "newer")
    assert ids(await state(api, stayer["id"], stayer_pak)) == [newer["id"]]
    assert await s.state() == [marker]
    listed = await api.client.get(
        f"/api/v1/stacks/{s.stack['id']}/deployment-objects", headers=api.admin
    )
    assert listed.status_code == 200, listed.text
    assert [o["id"] for o in listed.json()] == [newer["id"], s.obj["id"]]


async def test_the_owed_marker_is_readable_by_its_recipient(api: Api) -> None:
    s = await scene(api)
    await by_target(s)
    await s.delete(f"/agents/{s.agent_id}/targets/{s.stack['id']}")
    [marker] = await s.state()
    response = await api.client.get(
        f"/api/v1/deployment-objects/{marker['id']}", headers=auth(s.agent_pak)
    )
    assert response.status_code == 200, response.text
    assert response.json() == marker


async def test_a_stack_without_objects_owes_no_marker(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak, "empty")
    await target(api, agent["id"], stack["id"])
    response = await api.client.delete(
        f"/api/v1/agents/{agent['id']}/targets/{stack['id']}", headers=api.admin
    )
    assert response.status_code == 204, response.text
    assert await state(api, agent["id"], agent_pak, mode="full") == []
    assert await api.audit(action="stack.unassigned") == []


async def test_reassociation_before_the_acknowledgement_cancels_the_marker(api: Api) -> None:
    s = await scene(api)
    await by_label(s)
    await s.report(s.obj["id"])
    await s.delete(f"/agents/{s.agent_id}/labels/env:prod")
    assert_marker(await s.state(), s.stack["id"])
    await label_agent(api, s.agent_id, "env:prod")
    # The agent never removed anything: it still holds the object it applied.
    assert await s.state() == []
    assert ids(await s.state(mode="full")) == [s.obj["id"]]


async def test_reassociation_after_the_acknowledgement_serves_the_object_again(api: Api) -> None:
    s = await scene(api)
    await by_label(s)
    await s.report(s.obj["id"])
    await s.delete(f"/agents/{s.agent_id}/labels/env:prod")
    [marker] = await s.state()
    await s.report(marker["id"])
    await label_agent(api, s.agent_id, "env:prod")
    assert ids(await s.state()) == [s.obj["id"]]
    await s.report(s.obj["id"])
    assert await s.state() == []
    # A second round works the same way: each unassignment has its own marker.
    await s.delete(f"/agents/{s.agent_id}/labels/env:prod")
    [second] = await s.state()
    assert second["id"] != marker["id"] and second["is_deletion_marker"] is True
    await s.report(second["id"])
    await label_agent(api, s.agent_id, "env:prod")
    assert ids(await s.state()) == [s.obj["id"]]


async def test_a_late_acknowledgement_after_reassociation_is_accepted(api: Api) -> None:
    s = await scene(api)
    await by_target(s)
    await s.report(s.obj["id"])
    await s.delete(f"/agents/{s.agent_id}/targets/{s.stack['id']}")
    [marker] = await s.state()
    await target(api, s.agent_id, s.stack["id"])
    # The agent had already removed the objects when the target came back.
    await s.report(marker["id"])
    assert ids(await s.state()) == [s.obj["id"]]


async def test_deleting_the_stack_later_keeps_the_owed_marker(api: Api) -> None:
    s = await scene(api)
    stayer, stayer_pak = await api.create_agent("stayer")
    await by_target(s)
    await target(api, stayer["id"], s.stack["id"])
    await s.delete(f"/agents/{s.agent_id}/targets/{s.stack['id']}")
    [owed] = await s.state()
    await delete_stack(api, s.stack["id"])
    assert await s.state(mode="full") == [owed]
    deletion = assert_marker(await state(api, stayer["id"], stayer_pak), s.stack["id"])
    assert deletion["id"] != owed["id"]
    await s.report(owed["id"])
    assert await s.state(mode="full") == []


async def test_deactivation_pauses_and_does_not_unassign(api: Api) -> None:
    s = await scene(api)
    await by_label(s)
    for status in ("ACTIVE", "INACTIVE"):
        response = await api.client.put(
            f"/api/v1/agents/{s.agent_id}", json={"status": status}, headers=api.admin
        )
        assert response.status_code == 200, response.text
    assert ids(await s.state(mode="full")) == [s.obj["id"]]
    assert await api.audit(action="stack.unassigned") == []


async def test_an_unassignment_is_audited_with_its_marker(api: Api) -> None:
    s = await scene(api)
    other, _ = await api.create_agent("other")
    await by_label(s)
    await label_agent(api, other["id"], "env:prod")
    await s.delete(f"/stacks/{s.stack['id']}/labels/env:prod")
    [marker] = await s.state()
    [record] = await api.audit(action="stack.unassigned")
    assert record["resource_id"] == s.stack["id"]
    assert record["details"]["deletion_marker_id"] == marker["id"]
    assert sorted(record["details"]["agent_ids"]) == sorted([s.agent_id, other["id"]])
