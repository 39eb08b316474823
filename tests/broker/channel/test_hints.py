"""Hints pushed to connected agents after a commit: a new deployment object reaches the agents
associated with its stack by target and by label (stack_changed with the Stack body), a target
added its agent (target_changed), a new work order the agents it targets by id and by label
(work_order with the WorkOrder body), a deleted stack and a removed label the agents that lost
the stack; agents not concerned get nothing."""

from __future__ import annotations

from typing import Any

from tests.broker.api.test_work_orders import JOB
from tests.broker.channel.conftest import Fleet, next_frame, nothing_within


async def test_new_object_reaches_targeted_and_label_matched_agents_only(fleet: Fleet) -> None:
    direct, labelled, bystander = [await fleet.agent(f"edge-{n}") for n in range(3)]
    stack_id = await fleet.stack("web")
    await fleet.target(direct, stack_id)
    await fleet.label("stacks", stack_id, "env:prod")
    await fleet.label("agents", labelled.id, "env:prod")
    async with (
        fleet.dial(direct) as one,
        fleet.dial(labelled) as two,
        fleet.dial(bystander) as three,
    ):
        await fleet.post_object(stack_id)
        for ws in (one, two):
            frame = await next_frame(ws)
            assert frame["type"] == "stack_changed"
            assert frame["body"]["id"] == stack_id and frame["body"]["name"] == "web"
            assert frame["body"]["deleted_at"] is None
        await nothing_within(three)


async def test_target_added_pushes_target_changed(fleet: Fleet) -> None:
    agent, other = await fleet.agent("edge-1"), await fleet.agent("edge-2")
    stack_id = await fleet.stack("web")
    async with fleet.dial(agent) as ws, fleet.dial(other) as ws2:
        response = await fleet.api.client.post(
            f"/api/v1/agents/{agent.id}/targets",
            json={"stack_id": stack_id},
            headers=fleet.api.admin,
        )
        target = response.json()
        frames = [await next_frame(ws)]
        if frames[0]["type"] != "target_changed":
            frames.append(await next_frame(ws))
        assert {"type": "target_changed", "body": target} in frames
        assert target == {"id": target["id"], "agent_id": agent.id, "stack_id": stack_id}
        await nothing_within(ws2)


async def create_order(fleet: Fleet, targeting: dict[str, Any]) -> dict[str, Any]:
    response = await fleet.api.client.post(
        "/api/v1/work-orders",
        json={"work_type": "custom", "yaml_content": JOB, "targeting": targeting},
        headers=fleet.api.admin,
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def test_new_work_order_reaches_the_agents_it_targets(fleet: Fleet) -> None:
    named, labelled, bystander = [await fleet.agent(f"edge-{n}") for n in range(3)]
    await fleet.label("agents", labelled.id, "gpu")
    async with (
        fleet.dial(named) as one,
        fleet.dial(labelled) as two,
        fleet.dial(bystander) as three,
    ):
        by_id = await create_order(fleet, {"agent_ids": [named.id]})
        by_label = await create_order(fleet, {"labels": ["gpu"]})
        assert await next_frame(one) == {"type": "work_order", "body": by_id}
        assert await next_frame(two) == {"type": "work_order", "body": by_label}
        await nothing_within(one)
        await nothing_within(three)


async def test_deleted_stack_and_removed_label_reach_the_agents_that_lost_it(
    fleet: Fleet,
) -> None:
    direct, labelled = await fleet.agent("edge-1"), await fleet.agent("edge-2")
    stack_id = await fleet.stack("web")
    await fleet.post_object(stack_id)
    await fleet.target(direct, stack_id)
    await fleet.label("stacks", stack_id, "env:prod")
    await fleet.label("agents", labelled.id, "env:prod")
    async with fleet.dial(direct) as one, fleet.dial(labelled) as two:
        response = await fleet.api.client.delete(
            f"/api/v1/agents/{labelled.id}/labels/env:prod", headers=fleet.api.admin
        )
        assert response.status_code == 204, response.text
        lost = await next_frame(two)
        assert (lost["type"], lost["body"]["id"]) == ("stack_changed", stack_id)
        response = await fleet.api.client.delete(
            f"/api/v1/stacks/{stack_id}", headers=fleet.api.admin
        )
        assert response.status_code == 204, response.text
        # ``one`` may first hear of the label change too (its stack changed hands).
        deleted = await next_frame(one)
        if deleted["body"]["deleted_at"] is None:
            deleted = await next_frame(one)
        assert (deleted["type"], deleted["body"]["id"]) == ("stack_changed", stack_id)
        assert deleted["body"]["deleted_at"] is not None
        await nothing_within(two)
