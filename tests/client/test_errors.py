"""Typed errors and retries.

Against a real broker (SQLite and PostgreSQL): 401 → Unauthorized (unknown PAK), 403 → Forbidden
(a generator calling an admin-only route), 404 → NotFound (unknown agent, code
``agent_not_found``), 409 → Conflict (duplicate generator name, ``generator_name_taken``), 422 →
ValidationFailed (blank name, ``details.fields`` names it), 400 → BadRequest (agent search
without a cluster), each with status, code, message and details.

Without a broker (``httpx.MockTransport``, a closed port, a tiny asyncio server that never
answers): connection refused is retried up to ``Retry.attempts`` and then raises
BrokkrConnectionError, for GET and for POST; a GET answered 429/502/503/504 is retried until it
succeeds, or raises ServerError after the last attempt; a POST answered 503 is not retried;
``Retry-After`` is honoured; timeouts on GET are retried then raise BrokkrTimeout, on POST not
retried; an error body that is not JSON still maps to the typed error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from brokkr.broker.domain import paks
from brokkr.client import (
    AsyncBrokkrClient,
    BadRequest,
    BrokkrAPIError,
    BrokkrConnectionError,
    BrokkrError,
    BrokkrTimeout,
    Conflict,
    Forbidden,
    NotFound,
    Retry,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from brokkr.common import wire
from tests.cli.serving import free_port
from tests.client.conftest import LiveBroker, unique

FAST = Retry(attempts=3, backoff=0.01)

# --- HTTP errors from a real broker ----------------------------------------------------------


async def test_unknown_pak_is_unauthorized(live_broker: LiveBroker) -> None:
    async with live_broker.client(paks.generate().plaintext) as stranger:
        with pytest.raises(Unauthorized) as raised:
            await stranger.auth.whoami()
    error = raised.value
    assert isinstance(error, BrokkrAPIError) and isinstance(error, BrokkrError)
    assert (error.status, error.code) == (401, "unauthorized")
    assert error.message == "a valid PAK is required"
    assert error.details == {}
    assert str(error) == "401 unauthorized: a valid PAK is required"


async def test_missing_pak_is_unauthorized(live_broker: LiveBroker) -> None:
    async with live_broker.client(None) as anonymous:
        with pytest.raises(Unauthorized) as raised:
            await anonymous.stacks.list()
    assert raised.value.status == 401


async def test_generator_calling_an_admin_only_route_is_forbidden(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    generator = await admin.generators.create(name=unique("ci"))
    async with live_broker.client(generator.pak) as ci:
        with pytest.raises(Forbidden) as raised:
            await ci.generators.list()
        with pytest.raises(Forbidden) as creating:
            await ci.agents.create(name=unique("agent"), cluster_name="c")
    assert (raised.value.status, raised.value.code) == (403, "admin_required")
    assert raised.value.message
    assert creating.value.status == 403


async def test_unknown_agent_is_not_found(admin: AsyncBrokkrClient) -> None:
    agent_id = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        await admin.agents.get(agent_id)
    error = raised.value
    assert (error.status, error.code, error.message) == (404, "agent_not_found", "agent not found")
    assert error.details == {"id": str(agent_id)}


async def test_duplicate_generator_name_is_a_conflict(admin: AsyncBrokkrClient) -> None:
    name = unique("ci")
    await admin.generators.create(name=name)
    with pytest.raises(Conflict) as raised:
        await admin.generators.create(name=name)
    assert (raised.value.status, raised.value.code) == (409, "generator_name_taken")
    assert raised.value.message


async def test_blank_name_fails_validation_with_field_details(admin: AsyncBrokkrClient) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await admin.generators.create(name="   ")
    error = raised.value
    assert (error.status, error.code) == (422, "validation_failed")
    assert error.message == "the request body is invalid"
    fields = error.details["fields"]
    assert fields and any("name" in key for key in fields)


async def test_invalid_manifest_fails_validation(admin: AsyncBrokkrClient) -> None:
    stack = await admin.stacks.create(name=unique("stack"))
    with pytest.raises(ValidationFailed) as raised:
        await admin.stacks.deploy(stack.id, "kind: ConfigMap\n")
    assert raised.value.status == 422 and raised.value.code == "invalid_deployment_object"


async def test_agent_search_without_cluster_is_a_bad_request(admin: AsyncBrokkrClient) -> None:
    with pytest.raises(BadRequest) as raised:
        await admin.agents.search(name=unique("agent"), cluster_name="")
    assert (raised.value.status, raised.value.code) == (400, "name_and_cluster_required")
    assert "cluster_name" in raised.value.message


# --- retries, without a broker ---------------------------------------------------------------


class Recorder:
    """A MockTransport handler answering from a script, recording each attempt and its time."""

    def __init__(self, *outcomes: httpx.Response | Exception) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        outcome = self.outcomes[min(len(self.requests), len(self.outcomes)) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @property
    def attempts(self) -> int:
        return len(self.requests)


def error_response(status: int, code: str = "unavailable", **headers: str) -> httpx.Response:
    body = {"error": "try later", "code": code, "message": "try later"}
    return httpx.Response(status, json=body, headers=headers)


def generator_json() -> bytes:
    now = datetime.now(UTC)
    generator = wire.Generator(
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        deleted_at=None,
        name="ci",
        description=None,
        last_active_at=None,
        is_active=True,
    )
    return msgspec.json.encode(generator)


@pytest.fixture
async def mocked() -> AsyncIterator[Callable[[Recorder], AsyncBrokkrClient]]:
    """Clients on a MockTransport driven by a Recorder; all closed at the end of the test."""
    clients: list[AsyncBrokkrClient] = []

    def make(recorder: Recorder) -> AsyncBrokkrClient:
        client = AsyncBrokkrClient(
            "http://broker.test", "pak", retry=FAST, transport=httpx.MockTransport(recorder)
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


class CountingTransport(httpx.AsyncHTTPTransport):
    """The real network transport, counting the requests it is asked to send."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await super().handle_async_request(request)


async def test_connection_refused_on_a_closed_port_is_retried_then_raised() -> None:
    transport = CountingTransport()
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncBrokkrClient(url, "pak", retry=FAST, transport=transport) as client:
        with pytest.raises(BrokkrConnectionError) as raised:
            await client.stacks.list()
    assert transport.attempts == 3
    assert not isinstance(raised.value, BrokkrTimeout)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert "cannot reach the broker" in str(raised.value)


async def test_connection_refused_is_attempted_exactly_retry_attempts_times(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    recorder = Recorder(httpx.ConnectError("connection refused"))
    with pytest.raises(BrokkrConnectionError):
        await mocked(recorder).agents.list()
    assert recorder.attempts == 3


async def test_post_whose_connection_is_refused_is_retried(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    body = msgspec.json.encode({"generator": msgspec.json.decode(generator_json()), "pak": "p"})
    recorder = Recorder(
        httpx.ConnectError("connection refused"),
        httpx.ConnectError("connection refused"),
        httpx.Response(201, content=body),
    )
    created = await mocked(recorder).generators.create(name="ci")
    assert isinstance(created, wire.CreateGeneratorResponse) and created.pak == "p"
    assert recorder.attempts == 3
    assert {request.method for request in recorder.requests} == {"POST"}

    refused = Recorder(httpx.ConnectError("connection refused"))
    with pytest.raises(BrokkrConnectionError):
        await mocked(refused).generators.create(name="ci")
    assert refused.attempts == 3


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_get_answered_a_retryable_status_twice_then_200_succeeds(
    mocked: Callable[[Recorder], AsyncBrokkrClient], status: int
) -> None:
    content = generator_json()
    recorder = Recorder(
        error_response(status), error_response(status), httpx.Response(200, content=content)
    )
    generator = await mocked(recorder).generators.get(uuid.uuid4())
    assert generator == msgspec.json.decode(content, type=wire.Generator)
    assert recorder.attempts == 3


async def test_get_answered_503_every_time_raises_server_error_after_the_last_attempt(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    recorder = Recorder(error_response(503))
    with pytest.raises(ServerError) as raised:
        await mocked(recorder).generators.list()
    assert recorder.attempts == 3
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        503,
        "unavailable",
        "try later",
    )


async def test_post_answered_503_is_not_retried(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    recorder = Recorder(error_response(503), httpx.Response(201, content=b"{}"))
    with pytest.raises(ServerError) as raised:
        await mocked(recorder).stacks.create(name="web")
    assert recorder.attempts == 1
    assert raised.value.status == 503


async def test_retry_after_is_honoured(mocked: Callable[[Recorder], AsyncBrokkrClient]) -> None:
    recorder = Recorder(
        error_response(503, **{"Retry-After": "0.3"}), httpx.Response(200, content=b"[]")
    )
    assert await mocked(recorder).stacks.list() == []
    assert recorder.attempts == 2
    assert recorder.times[1] - recorder.times[0] >= 0.3


async def test_timeouts_on_get_are_retried_then_raise_brokkr_timeout(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    recorder = Recorder(httpx.ReadTimeout("timed out"))
    with pytest.raises(BrokkrTimeout) as raised:
        await mocked(recorder).agents.get(uuid.uuid4())
    assert recorder.attempts == 3
    assert isinstance(raised.value, BrokkrConnectionError)
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)


async def test_timeout_on_post_is_not_retried(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    recorder = Recorder(httpx.ReadTimeout("timed out"))
    with pytest.raises(BrokkrTimeout):
        await mocked(recorder).auth.whoami()
    assert recorder.attempts == 1


async def test_a_server_that_never_answers_times_out_after_retrying() -> None:
    connections = 0
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await release.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        retry = Retry(attempts=2, backoff=0.01)
        async with AsyncBrokkrClient(
            f"http://127.0.0.1:{port}", "pak", timeout=0.2, retry=retry
        ) as client:
            with pytest.raises(BrokkrTimeout):
                await client.stacks.list()
    finally:
        release.set()
        server.close()
        await server.wait_closed()
    # Two connections: the timed-out GET was tried again before giving up.
    assert connections == 2


async def test_error_body_that_is_not_json_still_maps_to_the_typed_error(
    mocked: Callable[[Recorder], AsyncBrokkrClient],
) -> None:
    recorder = Recorder(
        httpx.Response(404, text="<html>no such page</html>"),
        httpx.Response(502, text="bad gateway"),
    )
    client = mocked(recorder)
    with pytest.raises(NotFound) as raised:
        await client.stacks.get(uuid.uuid4())
    assert (raised.value.status, raised.value.code) == (404, "http_error")
    assert raised.value.message == "<html>no such page</html>"
    with pytest.raises(ServerError) as gateway:
        await client.auth.whoami()
    assert (gateway.value.status, gateway.value.message) == (502, "bad gateway")
