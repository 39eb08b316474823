"""The agent's work-order task against a real ``brokkr serve`` subprocess (SQLite), with a stand-in
``RunWorkOrder`` that runs until the test lets it finish.

Covers: a poll claims only as many orders as there are free slots (``max_concurrent_work_orders``)
and the rest stay PENDING until a slot frees; results are completed on the broker (a success is
logged, a retryable failure is scheduled for a retry, a permanent one is logged as failed at
once); two agents polling the same label-targeted orders at once never both claim one: the loser
of a claim moves on to the next order instead of failing its poll; a result the broker could not
take (unreachable) is reported on a later poll, without running the order again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from brokkr.agent.outcomes import WorkOrderResult
from brokkr.agent.work_queue import WorkQueue
from brokkr.client import AsyncBrokkrClient, Retry
from brokkr.common import wire
from tests.fakes.gate import Gate

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"


class Runner:
    """A ``RunWorkOrder`` whose runs end when ``release`` is set, with ``result``."""

    def __init__(self, result: WorkOrderResult | None = None) -> None:
        self.result = result or WorkOrderResult(success=True, message="done")
        self.release = asyncio.Event()
        self.started: list[uuid.UUID] = []

    async def __call__(self, order: wire.WorkOrder, *, agent_id: uuid.UUID) -> WorkOrderResult:
        self.started.append(order.id)
        await self.release.wait()
        return self.result


class Agent:
    def __init__(self, agent: wire.Agent, client: AsyncBrokkrClient, queue: WorkQueue) -> None:
        self.agent = agent
        self.client = client
        self.queue = queue

    async def poll(self) -> None:
        await self.queue.poll(self.agent.id)

    async def drain(self) -> None:
        await asyncio.gather(*self.queue.tasks())


@asynccontextmanager
async def agent(
    admin: AsyncBrokkrClient,
    url: str,
    runner: Runner,
    *,
    limit: int = 2,
    label: str = "",
    via: str | None = None,
) -> AsyncIterator[Agent]:
    """A registered agent (with ``label`` if given) and its work queue, on its own PAK (talking
    to the broker ``via`` another URL if given)."""
    created = await admin.agents.create(name=f"agent-{uuid.uuid4().hex[:10]}", cluster_name="c")
    if label:
        await admin.agents.add_label(created.agent.id, label)
    async with AsyncBrokkrClient(
        via or url, created.initial_pak, retry=Retry(attempts=1)
    ) as client:
        queue = WorkQueue(client, runner, limit=limit, stop=asyncio.Event())
        yield Agent(created.agent, client, queue)


async def create(
    admin: AsyncBrokkrClient,
    count: int,
    *,
    agent_ids: list[uuid.UUID] | None = None,
    labels: list[str] | None = None,
) -> list[uuid.UUID]:
    orders = [
        await admin.work_orders.create(
            work_type="custom", yaml_content=CONFIGMAP, agent_ids=agent_ids, labels=labels
        )
        for _ in range(count)
    ]
    return [order.id for order in orders]


async def statuses(admin: AsyncBrokkrClient, ids: list[uuid.UUID]) -> list[str]:
    return [(await admin.work_orders.get(order_id)).status for order_id in ids]


async def test_claims_only_up_to_the_limit_and_completes_what_it_ran(
    admin: AsyncBrokkrClient, broker: tuple[str, str]
) -> None:
    runner = Runner()
    async with agent(admin, broker[0], runner, limit=2) as a:
        ids = await create(admin, 3, agent_ids=[a.agent.id])
        await a.poll()
        await asyncio.sleep(0.1)
        assert sorted(runner.started) == sorted(ids[:2])
        assert await statuses(admin, ids) == ["CLAIMED", "CLAIMED", "PENDING"]
        await a.poll()  # no free slot: nothing more is claimed
        assert (await admin.work_orders.get(ids[2])).status == "PENDING"
        runner.release.set()
        await a.drain()
        for order_id in ids[:2]:
            entry = await admin.work_orders.get_log(order_id)
            assert (entry.success, entry.result_message) == (True, "done")
            assert entry.claimed_by == a.agent.id
        await a.poll()
        await a.drain()
        assert (await admin.work_orders.get_log(ids[2])).success


async def test_a_retryable_failure_is_scheduled_for_a_retry(
    admin: AsyncBrokkrClient, broker: tuple[str, str]
) -> None:
    runner = Runner(WorkOrderResult(success=False, message="503 from the API", retryable=True))
    runner.release.set()
    async with agent(admin, broker[0], runner) as a:
        [order_id] = await create(admin, 1, agent_ids=[a.agent.id])
        await a.poll()
        await a.drain()
    order = await admin.work_orders.get(order_id)
    assert (order.status, order.retry_count, order.last_error) == (
        "RETRY_PENDING",
        1,
        "503 from the API",
    )


async def test_a_permanent_failure_is_logged_at_once(
    admin: AsyncBrokkrClient, broker: tuple[str, str]
) -> None:
    runner = Runner(WorkOrderResult(success=False, message="Invalid: bad name"))
    runner.release.set()
    async with agent(admin, broker[0], runner) as a:
        [order_id] = await create(admin, 1, agent_ids=[a.agent.id])
        await a.poll()
        await a.drain()
    entry = await admin.work_orders.get_log(order_id)
    assert (entry.success, entry.retries_attempted, entry.result_message) == (
        False,
        0,
        "Invalid: bad name",
    )


async def test_two_agents_never_both_claim_and_the_loser_moves_on(
    admin: AsyncBrokkrClient, broker: tuple[str, str]
) -> None:
    label = f"pool-{uuid.uuid4().hex[:8]}"
    first, second = Runner(), Runner()
    async with (
        agent(admin, broker[0], first, limit=4, label=label) as a,
        agent(admin, broker[0], second, limit=4, label=label) as b,
    ):
        ids = await create(admin, 4, labels=[label])
        for _ in range(3):
            await asyncio.gather(a.poll(), b.poll())
        assert not set(first.started) & set(second.started)
        assert sorted(first.started + second.started) == sorted(ids)
        first.release.set()
        second.release.set()
        await asyncio.gather(a.drain(), b.drain())
    for order_id in ids:
        assert (await admin.work_orders.get_log(order_id)).success


async def test_a_result_the_broker_could_not_take_is_reported_later(
    admin: AsyncBrokkrClient, broker: tuple[str, str]
) -> None:
    gate = Gate(int(broker[0].rsplit(":", 1)[1]))
    await gate.open()
    runner = Runner()
    async with agent(admin, broker[0], runner, via=gate.url) as a:
        [order_id] = await create(admin, 1, agent_ids=[a.agent.id])
        await a.poll()
        await gate.shut()
        runner.release.set()
        await a.drain()
        assert (await admin.work_orders.get(order_id)).status == "CLAIMED"
        await gate.open()
        await a.poll()
        await a.drain()
        try:
            entry = await admin.work_orders.get_log(order_id)
        finally:
            await gate.shut()
    assert (entry.success, entry.result_message) == (True, "done")
    assert runner.started == [order_id]
