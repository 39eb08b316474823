"""Compressed and streamed answers (issue #9, finding 2).

Covers gzip on the wire for a target state when the client accepts it (and not when it does not,
nor for small answers), the ETag/304 round trip and the request id of the observability layer
on compressed streamed answers, and a target state larger than the streaming batch served whole
and in order.
"""

from __future__ import annotations

import gzip
from uuid import UUID

import httpx
import msgspec

from brokkr.client import AsyncBrokkrClient
from tests.broker.api.test_agent_events import served
from tests.broker.api.test_deployment_objects import create_stack, post_object
from tests.broker.api.test_list_pages import configmap
from tests.broker.api.test_target_state import target
from tests.broker.conftest import Api, auth, limits


def state_path(agent_id: str) -> str:
    return f"/api/v1/agents/{agent_id}/target-state"


class RawRecorder(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and keeps what crossed the wire, before httpx decodes it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, int, httpx.Headers, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        self.exchanges.append((request, response.status_code, response.headers, raw))
        return httpx.Response(response.status_code, headers=response.headers, content=raw)


async def big_state(api: Api, stacks: int = 3) -> tuple[str, str, list[str]]:
    """An agent reached by ``stacks`` stacks of about 8 KiB of YAML each (newest first)."""
    world = await served(api)
    ids = [world.object_id]
    for i in range(1, stacks):
        stack = await create_stack(api, world.generator_pak, f"big-{i}")
        created = await post_object(api, stack["id"], auth(world.generator_pak), configmap(i, 8192))
        await target(api, world.agent_id, stack["id"])
        ids.append(created["id"])
    return world.agent_id, world.agent_pak, list(reversed(ids))


async def test_target_state_is_gzipped_on_the_wire_when_accepted(api: Api) -> None:
    agent_id, pak, ids = await big_state(api)
    recorder = RawRecorder(api.client._transport)
    async with httpx.AsyncClient(transport=recorder, base_url="http://broker.test") as client:
        response = await client.get(
            state_path(agent_id), headers={**auth(pak), "Accept-Encoding": "gzip"}
        )
    assert response.status_code == 200
    [(_, _, raw_headers, raw_body)] = recorder.exchanges
    assert raw_headers["content-encoding"] == "gzip"
    assert "accept-encoding" in raw_headers["vary"].lower()
    assert raw_headers["x-request-id"]
    assert len(raw_body) < len(response.content) / 3
    assert [item["id"] for item in msgspec.json.decode(gzip.decompress(raw_body))] == ids


async def test_identity_and_small_answers_are_not_compressed(api: Api) -> None:
    agent_id, pak, _ = await big_state(api)
    plain = await api.client.get(
        state_path(agent_id), headers={**auth(pak), "Accept-Encoding": "identity"}
    )
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    small = await api.client.get(
        f"/api/v1/agents/{agent_id}", headers={**auth(pak), "Accept-Encoding": "gzip"}
    )
    assert small.status_code == 200 and "content-encoding" not in small.headers


async def test_etag_round_trip_still_answers_304_without_a_body(api: Api) -> None:
    agent_id, pak, _ = await big_state(api)
    headers = {**auth(pak), "Accept-Encoding": "gzip"}
    first = await api.client.get(state_path(agent_id), headers=headers)
    assert first.headers["content-encoding"] == "gzip" and first.headers["etag"]
    again = await api.client.get(
        state_path(agent_id), headers={**headers, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


async def test_a_state_larger_than_the_batch_is_streamed_whole_and_in_order(api: Api) -> None:
    agent_id, pak, ids = await big_state(api, stacks=5)
    # New objects, never served yet: none is in memory, so every batch is read from the database.
    with limits(api, target_state_batch_bytes=1024):
        response = await api.client.get(state_path(agent_id), headers=auth(pak))
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == ids


async def test_empty_state_streams_an_empty_array(api: Api) -> None:
    agent, pak = await api.create_agent()
    response = await api.client.get(state_path(agent["id"]), headers=auth(pak))
    assert response.status_code == 200 and response.json() == []


async def test_the_client_asks_for_gzip_and_decodes_it(api: Api) -> None:
    agent_id, pak, ids = await big_state(api)
    recorder = RawRecorder(api.client._transport)
    async with AsyncBrokkrClient("http://broker.test", pak, transport=recorder) as client:
        state = await client.agents.target_state(UUID(agent_id))
    assert state.objects is not None and [str(item.id) for item in state.objects] == ids
    [(request, _, raw_headers, _)] = recorder.exchanges
    assert "gzip" in request.headers["accept-encoding"]
    assert raw_headers["content-encoding"] == "gzip"
