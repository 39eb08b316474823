"""The blocking ``BrokkrClient`` against a real broker process (SQLite and PostgreSQL).

Covers whoami, creating a stack, deploying to it, listing and reading back, from plain sync code;
the same typed exceptions as the async client (404, 409, 422, 401, connection refused); paging
iterators returning lists; ``close()`` being idempotent, also as a context manager, and leaving
no thread behind; use from inside a running event loop (an ``async def`` test); and a blocking
twin for every method of every async resource.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest

from brokkr.broker.domain import paks
from brokkr.client import (
    BrokkrClient,
    BrokkrConnectionError,
    BrokkrError,
    Conflict,
    NotFound,
    Retry,
    Unauthorized,
    ValidationFailed,
)
from brokkr.client.blocking import BlockingMethod
from brokkr.common import wire
from tests.cli.serving import free_port
from tests.client.conftest import LiveBroker, manifest, unique

FAST = Retry(attempts=2, backoff=0.01)


@pytest.fixture
def sync_admin(live_broker: LiveBroker) -> Iterator[BrokkrClient]:
    client = BrokkrClient(live_broker.url, live_broker.admin_pak, retry=FAST)
    try:
        yield client
    finally:
        client.close()


def client_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "brokkr-client"]


def test_blocking_calls_return_wire_structs(sync_admin: BrokkrClient) -> None:
    assert sync_admin.auth.whoami() == wire.AuthResponse(admin=True, agent=None, generator=None)
    name, yaml = unique("web"), manifest(unique("cm"))

    stack = sync_admin.stacks.create(name=name)
    deployed = sync_admin.stacks.deploy(stack.id, yaml)

    assert isinstance(stack, wire.Stack) and stack.name == name
    assert isinstance(deployed, wire.DeploymentObject)
    assert (deployed.stack_id, deployed.yaml_content) == (stack.id, yaml)
    assert stack in sync_admin.stacks.list()
    assert sync_admin.stacks.find(name) == stack
    assert sync_admin.stacks.list_deployment_objects(stack.id) == [deployed]
    assert sync_admin.deployment_objects.get(deployed.id) == deployed


def test_errors_are_the_same_typed_exceptions(
    live_broker: LiveBroker, sync_admin: BrokkrClient
) -> None:
    with pytest.raises(NotFound) as missing:
        sync_admin.agents.get(uuid.uuid4())
    assert (missing.value.status, missing.value.code) == (404, "agent_not_found")

    name = unique("ci")
    sync_admin.generators.create(name=name)
    with pytest.raises(Conflict) as taken:
        sync_admin.generators.create(name=name)
    assert taken.value.code == "generator_name_taken"
    with pytest.raises(ValidationFailed) as invalid:
        sync_admin.stacks.create(name=" ")
    assert invalid.value.details["fields"]

    with (
        BrokkrClient(live_broker.url, paks.generate().plaintext, retry=FAST) as stranger,
        pytest.raises(Unauthorized),
    ):
        stranger.auth.whoami()
    with (
        BrokkrClient(f"http://127.0.0.1:{free_port()}", "pak", retry=FAST) as nowhere,
        pytest.raises(BrokkrConnectionError),
    ):
        nowhere.stacks.list()


def test_iterate_returns_a_list(live_broker: LiveBroker, sync_admin: BrokkrClient) -> None:
    created = sync_admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    agent_id = created.agent.id
    stack = sync_admin.stacks.create(name=unique("stack"))
    sync_admin.agents.add_target(agent_id, stack.id)
    deployed = sync_admin.stacks.deploy(stack.id, manifest(unique("cm")))
    with BrokkrClient(live_broker.url, created.initial_pak, retry=FAST) as agent:
        assert agent.agents.target_state(agent_id).objects == [deployed]
        for status in ("FAILURE", "FAILURE", "SUCCESS"):
            agent.agents.report_event(agent_id, deployment_object_id=deployed.id, status=status)

    events = sync_admin.agent_events.iterate(agent_id=agent_id, page=2)
    logs = sync_admin.audit_logs.iterate(page=1, resource_id=agent_id)

    assert isinstance(events, list) and len(events) == 3
    assert events == sync_admin.agent_events.list(agent_id=agent_id)
    assert isinstance(logs, list)
    assert logs == sync_admin.audit_logs.list(resource_id=agent_id).logs
    assert [log.action for log in logs] == ["agent.target_added", "agent.created"]


def test_close_is_idempotent_and_works_as_a_context_manager(live_broker: LiveBroker) -> None:
    before = len(client_threads())
    with BrokkrClient(live_broker.url, live_broker.admin_pak) as client:
        assert len(client_threads()) == before + 1
        assert client.auth.whoami().admin is True
        client.close()
        client.close()
    client.close()
    assert len(client_threads()) == before

    plain = BrokkrClient(live_broker.url, live_broker.admin_pak)
    plain.close()
    plain.close()
    assert len(client_threads()) == before


async def test_works_inside_a_running_event_loop(live_broker: LiveBroker) -> None:
    asyncio.get_running_loop()  # this test runs on the suite's event loop
    with BrokkrClient(live_broker.url, live_broker.admin_pak, retry=FAST) as client:
        assert client.auth.whoami().admin is True
        stack = client.stacks.create(name=unique("in-loop"))
        assert client.stacks.get(stack.id) == stack
        with pytest.raises(NotFound):
            client.stacks.get(uuid.uuid4())


def test_calls_after_close_raise_a_brokkr_error(live_broker: LiveBroker) -> None:
    client = BrokkrClient(live_broker.url, live_broker.admin_pak)
    client.close()
    with pytest.raises(BrokkrError, match="closed"):
        client.auth.whoami()


def test_every_async_resource_method_has_a_blocking_twin() -> None:
    with BrokkrClient(f"http://127.0.0.1:{free_port()}") as client:
        resources = {name: r for name, r in vars(client._client).items() if name[0] != "_"}
        assert len(resources) == 12
        for name, resource in resources.items():
            twin = vars(type(getattr(client, name)))
            methods = {m for m in dir(resource) if m[0] != "_" and callable(getattr(resource, m))}
            assert methods == {m for m in methods if isinstance(twin.get(m), BlockingMethod)}, name
