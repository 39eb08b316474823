"""Target state: GET /agents/{id}/target-state (D12, D13).

Covers the reference scenario (object → target → served → SUCCESS hides it), FAILURE keeping it,
mode=full, only the newest object per stack, association by target, label and annotation (and
losing it, which serves the stack's deletion marker instead: more in test_unassignment.py),
deletion markers of deleted stacks and generators served to exactly the agents that
were associated before the delete until each acknowledges, the strong ETag with If-None-Match →
304 and a new ETag after every change that affects the agent, bad modes, and the role matrix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.broker.conftest import Api, assert_error, auth

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STRONG_ETAG = re.compile(r'^"[^"\s]+"$')


def manifest(name: str) -> str:
    return CONFIGMAP.format(name=name)


async def create_stack(api: Api, generator_pak: str, name: str = "web") -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/stacks", json={"name": name}, headers=auth(generator_pak)
    )
    assert response.status_code == 201, response.text
    stack: dict[str, Any] = response.json()
    return stack


async def post_object(api: Api, stack_id: str, name: str = "settings") -> dict[str, Any]:
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        json={"yaml_content": manifest(name)},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def target(api: Api, agent_id: str, stack_id: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/targets", json={"stack_id": stack_id}, headers=api.admin
    )
    assert response.status_code == 201, response.text


async def label_agent(api: Api, agent_id: str, label: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/labels", json={"label": label}, headers=api.admin
    )
    assert response.status_code == 201, response.text


async def label_stack(api: Api, stack_id: str, label: str) -> None:
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/labels", json={"label": label}, headers=api.admin
    )
    assert response.status_code == 201, response.text


async def annotate_agent(api: Api, agent_id: str, key: str, value: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/annotations",
        json={"key": key, "value": value},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text


async def annotate_stack(api: Api, stack_id: str, key: str, value: str) -> None:
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/annotations",
        json={"key": key, "value": value},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text


async def delete_stack(api: Api, stack_id: str) -> None:
    response = await api.client.delete(f"/api/v1/stacks/{stack_id}", headers=api.admin)
    assert response.status_code == 204, response.text


async def report(api: Api, agent_id: str, pak: str, object_id: str, status: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/events",
        json={"deployment_object_id": object_id, "status": status},
        headers=auth(pak),
    )
    assert response.status_code == 201, response.text


async def fetch(
    api: Api, agent_id: str, pak: str, *, mode: str | None = None, etag: str | None = None
) -> httpx.Response:
    headers = auth(pak)
    if etag is not None:
        headers["If-None-Match"] = etag
    params = {} if mode is None else {"mode": mode}
    return await api.client.get(
        f"/api/v1/agents/{agent_id}/target-state", params=params, headers=headers
    )


async def state(api: Api, agent_id: str, pak: str, *, mode: str | None = None) -> list[Any]:
    response = await fetch(api, agent_id, pak, mode=mode)
    assert response.status_code == 200, response.text
    objects: list[Any] = response.json()
    return objects


def ids(objects: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in objects]


async def test_reference_scenario_success_hides_object_from_incremental_state(api: Api) -> None:
    generator, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    assert stack["generator_id"] == generator["id"]
    created = await api.client.post(
        f"/api/v1/stacks/{stack['id']}/deployment-objects",
        json={"yaml_content": manifest("app")},
        headers=auth(generator_pak),
    )
    assert created.status_code == 201
    obj = created.json()
    assert await state(api, agent["id"], agent_pak) == []
    targeted = await api.client.post(
        f"/api/v1/agents/{agent['id']}/targets",
        json={"stack_id": stack["id"]},
        headers=auth(generator_pak),
    )
    assert targeted.status_code == 201
    assert await state(api, agent["id"], agent_pak) == [obj]
    await report(api, agent["id"], agent_pak, obj["id"], "SUCCESS")
    assert await state(api, agent["id"], agent_pak) == []
    assert await state(api, agent["id"], agent_pak, mode="incremental") == []
    assert await state(api, agent["id"], agent_pak, mode="full") == [obj]


async def test_failure_keeps_object_in_incremental_state(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    obj = await post_object(api, stack["id"])
    await target(api, agent["id"], stack["id"])
    await report(api, agent["id"], agent_pak, obj["id"], "FAILURE")
    await report(api, agent["id"], agent_pak, obj["id"], "FAILURE")
    assert ids(await state(api, agent["id"], agent_pak)) == [obj["id"]]


async def test_success_of_one_agent_does_not_hide_object_from_another(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    first, first_pak = await api.create_agent("a1")
    second, second_pak = await api.create_agent("a2")
    stack = await create_stack(api, generator_pak)
    obj = await post_object(api, stack["id"])
    await target(api, first["id"], stack["id"])
    await target(api, second["id"], stack["id"])
    await report(api, first["id"], first_pak, obj["id"], "SUCCESS")
    assert await state(api, first["id"], first_pak) == []
    assert ids(await state(api, second["id"], second_pak)) == [obj["id"]]


async def test_full_mode_always_shows_the_newest_object(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    other = await create_stack(api, generator_pak, "other")
    await target(api, agent["id"], stack["id"])
    await target(api, agent["id"], other["id"])
    first = await post_object(api, stack["id"])
    other_obj = await post_object(api, other["id"])
    await report(api, agent["id"], agent_pak, first["id"], "SUCCESS")
    await report(api, agent["id"], agent_pak, other_obj["id"], "FAILURE")
    assert ids(await state(api, agent["id"], agent_pak, mode="full")) == [
        other_obj["id"],
        first["id"],
    ]
    newer = await post_object(api, stack["id"], "newer")
    await report(api, agent["id"], agent_pak, newer["id"], "SUCCESS")
    assert ids(await state(api, agent["id"], agent_pak, mode="full")) == [
        newer["id"],
        other_obj["id"],
    ]
    assert ids(await state(api, agent["id"], agent_pak)) == [other_obj["id"]]


async def test_only_the_newest_object_per_stack_is_served(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    first = await post_object(api, stack["id"], "one")
    second = await post_object(api, stack["id"], "two")
    assert await state(api, agent["id"], agent_pak) == [second]
    # Acknowledging an older revision changes nothing: the newest is still owed.
    await report(api, agent["id"], agent_pak, first["id"], "SUCCESS")
    assert ids(await state(api, agent["id"], agent_pak)) == [second["id"]]
    await report(api, agent["id"], agent_pak, second["id"], "SUCCESS")
    assert await state(api, agent["id"], agent_pak) == []
    third = await post_object(api, stack["id"], "three")
    assert await state(api, agent["id"], agent_pak) == [third]
    assert ids(await state(api, agent["id"], agent_pak, mode="full")) == [third["id"]]


async def test_stack_without_objects_contributes_nothing(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    assert await state(api, agent["id"], agent_pak, mode="full") == []


async def test_label_match_delivers_to_agents_with_that_label_only(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    prod, prod_pak = await api.create_agent("prod")
    dev, dev_pak = await api.create_agent("dev")
    bare, bare_pak = await api.create_agent("bare")
    await label_agent(api, prod["id"], "env:prod")
    await label_agent(api, dev["id"], "env:dev")
    stack = await create_stack(api, generator_pak)
    await label_stack(api, stack["id"], "env:prod")
    obj = await post_object(api, stack["id"])
    assert ids(await state(api, prod["id"], prod_pak)) == [obj["id"]]
    assert await state(api, dev["id"], dev_pak) == []
    assert await state(api, bare["id"], bare_pak) == []


async def test_annotation_match_needs_same_key_and_value(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    match, match_pak = await api.create_agent("match")
    other_value, other_value_pak = await api.create_agent("other-value")
    other_key, other_key_pak = await api.create_agent("other-key")
    await annotate_agent(api, match["id"], "region", "eu")
    await annotate_agent(api, other_value["id"], "region", "us")
    await annotate_agent(api, other_key["id"], "zone", "eu")
    stack = await create_stack(api, generator_pak)
    await annotate_stack(api, stack["id"], "region", "eu")
    obj = await post_object(api, stack["id"])
    assert ids(await state(api, match["id"], match_pak)) == [obj["id"]]
    assert await state(api, other_value["id"], other_value_pak) == []
    assert await state(api, other_key["id"], other_key_pak) == []


async def test_stack_reached_by_several_paths_is_served_once(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    await label_agent(api, agent["id"], "team:a")
    await label_stack(api, stack["id"], "team:a")
    await annotate_agent(api, agent["id"], "tier", "web")
    await annotate_stack(api, stack["id"], "tier", "web")
    obj = await post_object(api, stack["id"])
    assert ids(await state(api, agent["id"], agent_pak)) == [obj["id"]]


@pytest.mark.parametrize("removed", ["agent-label", "stack-label", "agent-annotation", "target"])
async def test_losing_the_association_serves_a_marker_instead(api: Api, removed: str) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    obj = await post_object(api, stack["id"])
    path = {
        "agent-label": f"/api/v1/agents/{agent['id']}/labels/env:prod",
        "stack-label": f"/api/v1/stacks/{stack['id']}/labels/env:prod",
        "agent-annotation": f"/api/v1/agents/{agent['id']}/annotations/region",
        "target": f"/api/v1/agents/{agent['id']}/targets/{stack['id']}",
    }[removed]
    if removed.endswith("label"):
        await label_agent(api, agent["id"], "env:prod")
        await label_stack(api, stack["id"], "env:prod")
    elif removed == "agent-annotation":
        await annotate_agent(api, agent["id"], "region", "eu")
        await annotate_stack(api, stack["id"], "region", "eu")
    else:
        await target(api, agent["id"], stack["id"])
    assert ids(await state(api, agent["id"], agent_pak)) == [obj["id"]]
    response = await api.client.delete(path, headers=api.admin)
    assert response.status_code == 204, response.text
    marker = assert_marker(await state(api, agent["id"], agent_pak, mode="full"), stack["id"])
    assert marker["sequence_id"] > obj["sequence_id"]


@dataclass
class Fleet:
    """Agents around one stack: associated by target, label, annotation; one unrelated."""

    stack: dict[str, Any]
    old_object: dict[str, Any]
    associated: list[tuple[str, str]]
    unrelated: tuple[str, str]


async def fleet(api: Api, generator_pak: str, name: str = "web") -> Fleet:
    stack = await create_stack(api, generator_pak, name)
    old_object = await post_object(api, stack["id"])
    by_target, target_pak = await api.create_agent(f"{name}-target")
    by_label, label_pak = await api.create_agent(f"{name}-label")
    by_annotation, annotation_pak = await api.create_agent(f"{name}-annotation")
    unrelated, unrelated_pak = await api.create_agent(f"{name}-unrelated")
    await target(api, by_target["id"], stack["id"])
    await label_stack(api, stack["id"], f"app:{name}")
    await label_agent(api, by_label["id"], f"app:{name}")
    await annotate_stack(api, stack["id"], "owner", name)
    await annotate_agent(api, by_annotation["id"], "owner", name)
    await label_agent(api, unrelated["id"], "app:elsewhere")
    return Fleet(
        stack=stack,
        old_object=old_object,
        associated=[
            (by_target["id"], target_pak),
            (by_label["id"], label_pak),
            (by_annotation["id"], annotation_pak),
        ],
        unrelated=(unrelated["id"], unrelated_pak),
    )


def assert_marker(objects: list[dict[str, Any]], stack_id: str) -> dict[str, Any]:
    [marker] = objects
    assert marker["is_deletion_marker"] is True
    assert marker["stack_id"] == stack_id
    assert marker["yaml_content"] == ""
    assert marker["yaml_checksum"] == EMPTY_SHA256
    assert marker["deleted_at"] is None
    return marker


async def test_stack_delete_serves_marker_to_every_agent_associated_before(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    group = await fleet(api, generator_pak)
    first_id, first_pak = group.associated[0]
    # An agent that already applied the last revision still gets the marker.
    await report(api, first_id, first_pak, group.old_object["id"], "SUCCESS")
    await delete_stack(api, group.stack["id"])
    markers = []
    for agent_id, pak in group.associated:
        markers.append(assert_marker(await state(api, agent_id, pak), group.stack["id"]))
        assert await state(api, agent_id, pak, mode="full") == [markers[-1]]
    assert len({m["id"] for m in markers}) == 1
    assert markers[0]["sequence_id"] > group.old_object["sequence_id"]
    unrelated_id, unrelated_pak = group.unrelated
    assert await state(api, unrelated_id, unrelated_pak, mode="full") == []


async def test_agents_associated_only_after_the_delete_never_see_the_marker(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    group = await fleet(api, generator_pak)
    await delete_stack(api, group.stack["id"])
    late, late_pak = await api.create_agent("late")
    await label_agent(api, late["id"], "app:web")
    await annotate_agent(api, late["id"], "owner", "web")
    unrelated_id, unrelated_pak = group.unrelated
    await label_agent(api, unrelated_id, "app:web")
    assert await state(api, late["id"], late_pak, mode="full") == []
    assert await state(api, unrelated_id, unrelated_pak, mode="full") == []
    # Targeting a deleted stack is refused, so no new recipient can appear that way either.
    response = await api.client.post(
        f"/api/v1/agents/{late['id']}/targets",
        json={"stack_id": group.stack["id"]},
        headers=api.admin,
    )
    assert_error(response, 404)
    assert await state(api, late["id"], late_pak, mode="full") == []


async def test_marker_stays_until_each_agent_reports_success(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    group = await fleet(api, generator_pak)
    await delete_stack(api, group.stack["id"])
    (first_id, first_pak), (second_id, second_pak), _ = group.associated
    marker = assert_marker(await state(api, first_id, first_pak), group.stack["id"])
    await report(api, first_id, first_pak, marker["id"], "FAILURE")
    assert_marker(await state(api, first_id, first_pak), group.stack["id"])
    assert_marker(await state(api, first_id, first_pak, mode="full"), group.stack["id"])
    await report(api, first_id, first_pak, marker["id"], "SUCCESS")
    assert await state(api, first_id, first_pak) == []
    assert await state(api, first_id, first_pak, mode="full") == []
    # The other recipients still owe their own acknowledgement.
    assert_marker(await state(api, second_id, second_pak), group.stack["id"])
    assert_marker(await state(api, second_id, second_pak, mode="full"), group.stack["id"])


async def test_owed_marker_survives_losing_the_association_after_the_delete(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    group = await fleet(api, generator_pak)
    await delete_stack(api, group.stack["id"])
    _, (label_agent_id, label_pak), (annotation_agent_id, annotation_pak) = group.associated
    for path in (
        f"/api/v1/agents/{label_agent_id}/labels/app:web",
        f"/api/v1/agents/{annotation_agent_id}/annotations/owner",
    ):
        response = await api.client.delete(path, headers=api.admin)
        assert response.status_code == 204, response.text
    assert_marker(await state(api, label_agent_id, label_pak), group.stack["id"])
    assert_marker(await state(api, annotation_agent_id, annotation_pak), group.stack["id"])


async def test_generator_delete_serves_markers_for_all_its_stacks(api: Api) -> None:
    generator, generator_pak = await api.create_generator("doomed")
    _, survivor_pak = await api.create_generator("survivor")
    web = await fleet(api, generator_pak, "web")
    db_stack = await create_stack(api, generator_pak, "db")
    await post_object(api, db_stack["id"])
    kept = await create_stack(api, survivor_pak, "kept")
    kept_object = await post_object(api, kept["id"])
    target_id, target_pak = web.associated[0]
    await target(api, target_id, db_stack["id"])
    await target(api, target_id, kept["id"])
    response = await api.client.delete(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert response.status_code == 204, response.text
    served = await state(api, target_id, target_pak)
    markers = [o for o in served if o["is_deletion_marker"]]
    assert {m["stack_id"] for m in markers} == {web.stack["id"], db_stack["id"]}
    assert all(m["yaml_checksum"] == EMPTY_SHA256 for m in markers)
    assert [o["id"] for o in served if not o["is_deletion_marker"]] == [kept_object["id"]]
    for agent_id, pak in web.associated[1:]:
        assert_marker(await state(api, agent_id, pak), web.stack["id"])
    unrelated_id, unrelated_pak = web.unrelated
    assert await state(api, unrelated_id, unrelated_pak, mode="full") == []
    for marker in markers:
        await report(api, target_id, target_pak, marker["id"], "SUCCESS")
    assert ids(await state(api, target_id, target_pak, mode="full")) == [kept_object["id"]]


async def test_response_carries_a_quoted_strong_etag(api: Api) -> None:
    agent, agent_pak = await api.create_agent()
    for mode in (None, "full"):
        response = await fetch(api, agent["id"], agent_pak, mode=mode)
        assert response.status_code == 200
        assert STRONG_ETAG.match(response.headers["etag"]), response.headers["etag"]
        assert response.headers["content-type"].startswith("application/json")


async def test_unchanged_state_answers_304_to_if_none_match(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    await post_object(api, stack["id"])
    first = await fetch(api, agent["id"], agent_pak)
    again = await fetch(api, agent["id"], agent_pak)
    etag = first.headers["etag"]
    assert again.status_code == 200 and again.headers["etag"] == etag
    assert again.json() == first.json()
    for candidate in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        cached = await fetch(api, agent["id"], agent_pak, etag=candidate)
        assert cached.status_code == 304, candidate
        assert cached.content == b""
        assert cached.headers["etag"] == etag
    stale = await fetch(api, agent["id"], agent_pak, etag='"not-the-current-state"')
    assert stale.status_code == 200 and stale.json() == first.json()
    as_admin = await api.client.get(
        f"/api/v1/agents/{agent['id']}/target-state",
        headers={**api.admin, "If-None-Match": etag},
    )
    assert as_admin.status_code == 304


async def test_full_and_incremental_etags_differ(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    await post_object(api, stack["id"])
    incremental = await fetch(api, agent["id"], agent_pak)
    full = await fetch(api, agent["id"], agent_pak, mode="full")
    assert incremental.json() == full.json()
    assert incremental.headers["etag"] != full.headers["etag"]
    crossed = await fetch(
        api, agent["id"], agent_pak, mode="full", etag=incremental.headers["etag"]
    )
    assert crossed.status_code == 200
    cached = await fetch(api, agent["id"], agent_pak, mode="full", etag=full.headers["etag"])
    assert cached.status_code == 304


@dataclass
class Scene:
    agent_id: str
    agent_pak: str
    stack_id: str
    object_id: str
    generator_pak: str


Change = Callable[[Api, Scene], Awaitable[None]]


async def new_object(api: Api, scene: Scene) -> None:
    await post_object(api, scene.stack_id, "changed")


async def new_target(api: Api, scene: Scene) -> None:
    stack = await create_stack(api, scene.generator_pak, "second")
    await post_object(api, stack["id"])
    await target(api, scene.agent_id, stack["id"])


async def label_change(api: Api, scene: Scene) -> None:
    stack = await create_stack(api, scene.generator_pak, "labelled")
    await label_stack(api, stack["id"], "env:prod")
    await post_object(api, stack["id"])
    await label_agent(api, scene.agent_id, "env:prod")


async def label_removal(api: Api, scene: Scene) -> None:
    await label_stack(api, scene.stack_id, "env:prod")
    await label_agent(api, scene.agent_id, "env:prod")
    response = await api.client.delete(
        f"/api/v1/agents/{scene.agent_id}/targets/{scene.stack_id}", headers=api.admin
    )
    assert response.status_code == 204
    # Still reached through the label; removing the label is what changes the state.
    response = await api.client.delete(
        f"/api/v1/agents/{scene.agent_id}/labels/env:prod", headers=api.admin
    )
    assert response.status_code == 204


async def stack_deletion(api: Api, scene: Scene) -> None:
    await delete_stack(api, scene.stack_id)


async def success_event(api: Api, scene: Scene) -> None:
    await report(api, scene.agent_id, scene.agent_pak, scene.object_id, "SUCCESS")


@pytest.mark.parametrize(
    "change",
    [new_object, new_target, label_change, label_removal, stack_deletion, success_event],
    ids=lambda change: change.__name__,
)
async def test_every_relevant_change_gives_200_with_a_new_etag(api: Api, change: Change) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    obj = await post_object(api, stack["id"])
    before = await fetch(api, agent["id"], agent_pak)
    etag = before.headers["etag"]
    assert (await fetch(api, agent["id"], agent_pak, etag=etag)).status_code == 304
    await change(
        api,
        Scene(
            agent_id=agent["id"],
            agent_pak=agent_pak,
            stack_id=stack["id"],
            object_id=obj["id"],
            generator_pak=generator_pak,
        ),
    )
    after = await fetch(api, agent["id"], agent_pak, etag=etag)
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    assert after.json() != before.json()
    assert (await fetch(api, agent["id"], agent_pak, etag=after.headers["etag"])).status_code == 304


async def test_changes_that_do_not_affect_the_agent_keep_304(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    other, other_pak = await api.create_agent("other")
    stack = await create_stack(api, generator_pak)
    await target(api, agent["id"], stack["id"])
    obj = await post_object(api, stack["id"])
    etag = (await fetch(api, agent["id"], agent_pak)).headers["etag"]
    await report(api, agent["id"], agent_pak, obj["id"], "FAILURE")
    unrelated = await create_stack(api, generator_pak, "unrelated")
    await target(api, other["id"], unrelated["id"])
    unrelated_obj = await post_object(api, unrelated["id"])
    await report(api, other["id"], other_pak, unrelated_obj["id"], "SUCCESS")
    await label_agent(api, agent["id"], "unused:label")
    assert (await fetch(api, agent["id"], agent_pak, etag=etag)).status_code == 304


async def test_unknown_mode_is_400(api: Api) -> None:
    agent, agent_pak = await api.create_agent()
    for mode in ("bogus", "FULL", ""):
        assert_error(await fetch(api, agent["id"], agent_pak, mode=mode), 400)


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("self", 200), ("other-agent", 403), ("owner", 403), ("generator", 403)],
)
async def test_target_state_role_matrix(api: Api, who: str, status: int) -> None:
    _, owner_pak = await api.create_generator("owner")
    _, generator_pak = await api.create_generator("other")
    agent, agent_pak = await api.create_agent("a1")
    _, other_pak = await api.create_agent("a2")
    stack = await create_stack(api, owner_pak)
    await target(api, agent["id"], stack["id"])
    obj = await post_object(api, stack["id"])
    headers = {
        "admin": api.admin,
        "self": auth(agent_pak),
        "other-agent": auth(other_pak),
        "owner": auth(owner_pak),
        "generator": auth(generator_pak),
    }[who]
    response = await api.client.get(f"/api/v1/agents/{agent['id']}/target-state", headers=headers)
    if status == 200:
        assert response.status_code == 200 and ids(response.json()) == [obj["id"]]
    else:
        assert_error(response, 403, "agent_pak_mismatch")
        assert "etag" not in response.headers


async def test_admin_asking_for_unknown_or_deleted_agent_gets_404(api: Api) -> None:
    agent, _ = await api.create_agent()
    deleted = await api.client.delete(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    assert deleted.status_code == 204
    for agent_id in (agent["id"], "00000000-0000-4000-8000-000000000000"):
        response = await api.client.get(
            f"/api/v1/agents/{agent_id}/target-state", headers=api.admin
        )
        assert_error(response, 404, "agent_not_found")


async def test_target_state_requires_authentication(api: Api) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.get(f"/api/v1/agents/{agent['id']}/target-state")
    assert_error(response, 401)
