"""``client.work_orders`` against a real broker process, on SQLite and on PostgreSQL.

Covers create (targeting by agent id, label and annotation; the broker's defaults), get, list
(and its ``status``/``work_type`` filters), list_pending with the agent's own PAK, claim (a second
agent is refused with ``work_order_not_claimable``), complete: success and permanent failure
return the ``WorkOrderLog``, a retryable failure with retries left returns
``WorkOrderRetryScheduled`` (not an error) and leaves the order RETRY_PENDING; a finished order
reads back as COMPLETED/FAILED; list_log (``success``, ``agent_id``, ``work_type``, ``limit``)
and get_log; delete (cancel) and the typed errors of bad input and of a generator's PAK.
"""

from __future__ import annotations

import uuid

import pytest

from brokkr.client import AsyncBrokkrClient, BrokkrAPIError, Forbidden, NotFound
from brokkr.common import wire
from tests.client.conftest import LiveBroker, unique

JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n"


async def labelled_agent(admin: AsyncBrokkrClient, label: str) -> wire.CreateAgentResponse:
    created = await admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    await admin.agents.add_label(created.agent.id, label)
    return created


async def test_create_get_list_and_cancel(admin: AsyncBrokkrClient) -> None:
    work_type, label = unique("type"), unique("env")
    target = await labelled_agent(admin, unique("other"))
    yaml = JOB.format(name=unique("job"))

    order = await admin.work_orders.create(
        work_type=work_type,
        yaml_content=yaml,
        agent_ids=[target.agent.id],
        labels=[label],
        annotations={"region": "eu"},
        max_retries=2,
        backoff_seconds=5,
    )

    assert isinstance(order, wire.WorkOrder)
    assert (order.work_type, order.yaml_content, order.status) == (work_type, yaml, "PENDING")
    assert (order.max_retries, order.backoff_seconds, order.retry_count) == (2, 5, 0)
    assert order.claim_timeout_seconds == 3600  # the broker's default
    assert order.claimed_by is None and order.next_retry_after is None
    assert await admin.work_orders.get(order.id) == order
    assert await admin.work_orders.list(work_type=work_type) == [order]
    assert await admin.work_orders.list(work_type=work_type, status="PENDING") == [order]
    assert await admin.work_orders.list(work_type=work_type, status="CLAIMED") == []
    assert await admin.work_orders.list_pending(target.agent.id) == [order]

    await admin.work_orders.delete(order.id)

    with pytest.raises(NotFound) as missing:
        await admin.work_orders.get(order.id)
    assert missing.value.code == "work_order_not_found"
    with pytest.raises(NotFound):
        await admin.work_orders.delete(order.id)
    assert await admin.work_orders.list(work_type=work_type) == []


async def test_one_agent_claims_and_completes_a_label_targeted_order(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    label, work_type = unique("env"), unique("type")
    first, second = await labelled_agent(admin, label), await labelled_agent(admin, label)
    order = await admin.work_orders.create(
        work_type=work_type, yaml_content=JOB.format(name="j"), labels=[label]
    )

    async with (
        live_broker.client(first.initial_pak) as agent,
        live_broker.client(second.initial_pak) as rival,
    ):
        assert await agent.work_orders.list_pending(first.agent.id) == [order]
        claimed = await agent.work_orders.claim(order.id, first.agent.id)
        with pytest.raises(NotFound) as lost:
            await rival.work_orders.claim(order.id, second.agent.id)
        assert await rival.work_orders.list_pending(second.agent.id) == []
        logged = await agent.work_orders.complete(order.id, success=True, message="sha256:f00")

    assert lost.value.code == "work_order_not_claimable"
    assert (claimed.status, claimed.claimed_by) == ("CLAIMED", first.agent.id)
    assert claimed.claimed_at is not None
    assert isinstance(logged, wire.WorkOrderLog)
    assert (logged.id, logged.success, logged.result_message) == (order.id, True, "sha256:f00")
    assert (logged.claimed_by, logged.retries_attempted) == (first.agent.id, 0)
    assert await admin.work_orders.get_log(order.id) == logged
    read_back = await admin.work_orders.get(order.id)
    assert (read_back.status, read_back.claimed_by) == ("COMPLETED", first.agent.id)
    assert await admin.work_orders.list(work_type=work_type) == []
    assert await admin.work_orders.list_log(work_type=work_type, success=True) == [logged]
    assert await admin.work_orders.list_log(work_type=work_type, success=False) == []
    assert await admin.work_orders.list_log(agent_id=first.agent.id) == [logged]
    assert await admin.work_orders.list_log(agent_id=second.agent.id) == []


async def test_a_retryable_failure_is_scheduled_and_a_permanent_one_is_logged(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    label, work_type = unique("env"), unique("type")
    created = await labelled_agent(admin, label)
    agent_id = created.agent.id
    retried = await admin.work_orders.create(
        work_type=work_type, yaml_content="a: 1\n", labels=[label], backoff_seconds=600
    )
    failed = await admin.work_orders.create(
        work_type=work_type, yaml_content="b: 2\n", labels=[label]
    )

    async with live_broker.client(created.initial_pak) as agent:
        await agent.work_orders.claim(retried.id, agent_id)
        scheduled = await agent.work_orders.complete(
            retried.id, success=False, message="apiserver 503"
        )
        await agent.work_orders.claim(failed.id, agent_id)
        logged = await agent.work_orders.complete(
            failed.id, success=False, message="forbidden", retryable=False
        )

    assert scheduled == wire.WorkOrderRetryScheduled(status="retry_scheduled")
    waiting = await admin.work_orders.get(retried.id)
    assert (waiting.status, waiting.retry_count, waiting.claimed_by) == ("RETRY_PENDING", 1, None)
    assert waiting.last_error == "apiserver 503" and waiting.next_retry_after is not None
    assert isinstance(logged, wire.WorkOrderLog)
    assert (logged.success, logged.result_message, logged.retries_attempted) == (
        False,
        "forbidden",
        0,
    )
    assert (await admin.work_orders.get(failed.id)).status == "FAILED"
    assert await admin.work_orders.list_log(work_type=work_type, success=False) == [logged]
    assert await admin.work_orders.list_log(work_type=work_type, limit=1) == [logged]


async def test_bad_input_and_wrong_roles_raise_typed_errors(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    with pytest.raises(BrokkrAPIError) as untargeted:
        await admin.work_orders.create(work_type="custom", yaml_content="a: 1\n")
    assert (untargeted.value.status, untargeted.value.code) == (400, "no_targeting_specified")
    with pytest.raises(BrokkrAPIError) as bad_label:
        await admin.work_orders.create(
            work_type="custom", yaml_content="a: 1\n", labels=["has space"]
        )
    assert (bad_label.value.status, bad_label.value.code) == (422, "invalid_targeting")
    assert bad_label.value.details["labels"] == ["has space"]
    with pytest.raises(BrokkrAPIError) as unknown_agent:
        await admin.work_orders.create(
            work_type="custom", yaml_content="a: 1\n", agent_ids=[uuid.uuid4()]
        )
    assert (unknown_agent.value.status, unknown_agent.value.code) == (422, "unknown_target_agents")
    with pytest.raises(NotFound) as missing:
        await admin.work_orders.get_log(uuid.uuid4())
    assert missing.value.code == "work_order_log_entry_not_found"

    generator = await admin.generators.create(name=unique("ci"))
    async with live_broker.client(generator.pak) as ci:
        with pytest.raises(Forbidden):
            await ci.work_orders.list()
        with pytest.raises(Forbidden):
            await ci.work_orders.list_log()
