"""Bounded list pages (issue #9, finding 2): a list answer stops at ``limit`` items or at the byte
budget ``limits.list_page_bytes``, whichever comes first, keeps the reference body shape, and
says where the rest starts (``X-Next-Offset`` and a ``Link: rel="next"`` URL).

Covers deployment objects of a stack (the large ones: no page is ever more than the budget or
one object, and following the links yields every object once, in order), the budget read from
the settings in force at each request, and the other lists: agents, generators, stacks, agent
events and audit logs; and the client, which follows the pages to the end.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from brokkr.client import AsyncBrokkrClient
from tests.broker.api.test_agent_events import events_path, report, served
from tests.broker.api.test_deployment_objects import create_stack, objects_path, post_object
from tests.broker.conftest import Api, auth, limits

KIB = 1024


def configmap(index: int, size: int) -> str:
    head = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{index}\ndata:\n  pad: "
    return head + "x" * (size - len(head) - 1) + "\n"


async def follow(
    api: Api, path: str, headers: dict[str, str], **params: Any
) -> list[httpx.Response]:
    """Every page of a list, following its Link header; stops by itself after 50 pages."""
    pages = [await api.client.get(path, params=params, headers=headers)]
    while "link" in pages[-1].headers and len(pages) < 50:
        assert pages[-1].status_code == 200, pages[-1].text
        link = pages[-1].headers["link"]
        assert link.endswith('>; rel="next"')
        pages.append(await api.client.get(link[1 : link.index(">")], headers=headers))
    return pages


async def test_object_pages_stop_at_the_byte_budget_and_links_reach_every_object(
    api: Api,
) -> None:
    _, generator_pak = await api.create_generator()
    headers = auth(generator_pak)
    stack = await create_stack(api, generator_pak)
    created = [
        await post_object(api, stack["id"], headers, configmap(i, 3 * KIB)) for i in range(5)
    ]
    with limits(api, list_page_bytes=8 * KIB):
        pages = await follow(api, objects_path(stack["id"]), headers)
    assert [len(page.json()) for page in pages] == [2, 2, 1]
    assert all(len(page.content) <= 8 * KIB for page in pages)
    assert [page.headers.get("x-next-offset") for page in pages] == ["2", "4", None]
    served = [item["id"] for page in pages for item in page.json()]
    assert served == [item["id"] for item in reversed(created)]


async def test_an_object_larger_than_the_budget_is_served_alone(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    headers = auth(generator_pak)
    stack = await create_stack(api, generator_pak)
    for i in range(3):
        await post_object(api, stack["id"], headers, configmap(i, 4 * KIB))
    with limits(api, list_page_bytes=1 * KIB):
        pages = await follow(api, objects_path(stack["id"]), headers)
    assert [len(page.json()) for page in pages] == [1, 1, 1]


async def test_count_limit_pages_keep_the_other_query_parameters(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    headers = auth(generator_pak)
    stack = await create_stack(api, generator_pak)
    for i in range(3):
        await post_object(api, stack["id"], headers, configmap(i, 200))
    pages = await follow(api, objects_path(stack["id"]), headers, limit=2)
    assert [len(page.json()) for page in pages] == [2, 1]
    assert "limit=2" in pages[0].headers["link"] and "offset=2" in pages[0].headers["link"]
    exact = await api.client.get(objects_path(stack["id"]), params={"limit": 3}, headers=headers)
    assert len(exact.json()) == 3 and "x-next-offset" not in exact.headers


def items_of(page: httpx.Response) -> list[dict[str, Any]]:
    body = page.json()
    listed: list[dict[str, Any]] = body["logs"] if isinstance(body, dict) else body
    return listed


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/agents",
        "/api/v1/generators",
        "/api/v1/stacks",
        "/api/v1/agent-events",
        "/api/v1/agents/{agent}/events",
        "/api/v1/admin/audit-logs",
    ],
)
async def test_every_list_is_bounded_by_the_byte_budget_and_links_reach_the_rest(
    api: Api, path: str
) -> None:
    world = [await served(api, str(i)) for i in range(8)]
    for _ in range(4):
        await report(api, world[0].agent_id, world[0].agent_pak, world[0].object_id, "FAILURE")
        await report(api, world[1].agent_id, world[1].agent_pak, world[1].object_id, "FAILURE")
    url = path.format(agent=world[0].agent_id)
    whole = await api.client.get(url, headers=api.admin)
    assert whole.status_code == 200 and "x-next-offset" not in whole.headers
    expected = [item["id"] for item in items_of(whole)]
    assert len(expected) >= 4
    with limits(api, list_page_bytes=1 * KIB):
        pages = await follow(api, url, api.admin)
    assert len(pages) > 1
    assert all(len(msgspec.json.encode(items_of(page))) <= 1 * KIB for page in pages[:-1])
    assert [item["id"] for page in pages for item in items_of(page)] == expected


async def test_audit_page_body_counts_what_it_holds(api: Api) -> None:
    for i in range(5):
        await api.create_agent(f"agent-{i}")
    with limits(api, list_page_bytes=1 * KIB):
        page = await api.client.get("/api/v1/admin/audit-logs", headers=api.admin)
    body = page.json()
    assert body["total"] == 5 and body["count"] == len(body["logs"]) < 5
    assert page.headers["x-next-offset"] == str(body["count"])


async def test_agent_events_of_an_agent_page_by_bytes(api: Api) -> None:
    world = await served(api)
    for _ in range(6):
        await report(api, world.agent_id, world.agent_pak, world.object_id, "FAILURE")
    with limits(api, list_page_bytes=1 * KIB):
        pages = await follow(api, events_path(world.agent_id), auth(world.agent_pak), limit=4)
    assert sum(len(page.json()) for page in pages) == 6
    assert all(len(page.json()) <= 4 for page in pages)


async def test_the_client_follows_the_pages_to_the_end(api: Api) -> None:
    world = [await served(api, str(i)) for i in range(6)]
    for _ in range(5):
        await report(api, world[0].agent_id, world[0].agent_pak, world[0].object_id, "FAILURE")
    transport = api.client._transport
    async with AsyncBrokkrClient(
        "http://broker.test", api.admin_pak, transport=transport
    ) as client:
        with limits(api, list_page_bytes=1 * KIB):
            stacks = await client.stacks.list()
            agents = await client.agents.list()
            generators = await client.generators.list()
            events = [event async for event in client.agent_events.iterate(page=100)]
    assert {str(stack.id) for stack in stacks} == {item.stack_id for item in world}
    assert {str(agent.id) for agent in agents} == {item.agent_id for item in world}
    assert {str(g.id) for g in generators} >= {item.generator_id for item in world}
    assert len(events) == 5


async def test_openapi_documents_the_page_headers_and_keeps_the_body_schemas(api: Api) -> None:
    document = (await api.client.get("/docs/openapi.json")).json()
    listing = document["paths"]["/api/v1/stacks/{id}/deployment-objects"]["get"]
    ok = listing["responses"]["200"]
    assert set(ok["headers"]) >= {"X-Next-Offset", "Link"}
    assert ok["content"]["application/json"]["schema"]["type"] == "array"
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "offset"}
    agents = document["paths"]["/api/v1/agents"]["get"]["responses"]["200"]
    # The list or, for the trailing-slash search, one agent: never an empty schema ({}).
    assert all(agents["content"]["application/json"]["schema"]["oneOf"])
    state = document["paths"]["/api/v1/agents/{id}/target-state"]["get"]["responses"]["200"]
    assert state["content"]["application/json"]["schema"]["type"] == "array"
