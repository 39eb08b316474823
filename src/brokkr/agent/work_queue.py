"""The agent's work-order task: list its pending orders, claim, run, and complete them.

Each poll (while the agent is ACTIVE) first reports the results the broker could not take
before, then lists the orders this agent may claim (oldest first) and claims as many as there
are free slots (``max_concurrent_work_orders``). Losing a claim to another agent (404
``work_order_not_claimable``) is normal: the next order is tried. Every claimed order runs in
its own task, so a long build holds up neither the polls, heartbeats and reconciles nor the
other orders. A result the broker cannot take now (unreachable, 5xx) is kept and reported on a
later poll; one it refuses (the claim was released as stale, or the order cancelled) is dropped:
the broker no longer waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from uuid import UUID

from brokkr.agent.outcomes import RunWorkOrder, WorkOrderResult
from brokkr.client import (
    AsyncBrokkrClient,
    BrokkrAPIError,
    BrokkrConnectionError,
    NotFound,
    ServerError,
)
from brokkr.common import wire

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(
        self,
        client: AsyncBrokkrClient,
        run: RunWorkOrder,
        *,
        limit: int,
        stop: asyncio.Event,
    ) -> None:
        self.client = client
        self.run = run
        self.limit = limit
        self.stop = stop
        # The task of every order being run, by order id.
        self.running: dict[UUID, asyncio.Task[None]] = {}
        # Results of finished orders the broker has not taken yet.
        self.unreported: dict[UUID, WorkOrderResult] = {}

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self.running.values())

    async def poll(self, agent_id: UUID) -> None:
        """One tick: report what is owed, then claim and start up to the free slots."""
        for order_id, result in list(self.unreported.items()):
            await self.report(order_id, result)
        free = self.limit - len(self.running)
        if free <= 0 or self.stop.is_set():
            return
        pending = await self.client.work_orders.list_pending(agent_id)
        for order in pending:
            if free == 0 or self.stop.is_set():
                return
            if order.id in self.running or order.id in self.unreported:
                continue
            try:
                claimed = await self.client.work_orders.claim(order.id, agent_id)
            except NotFound:
                log.info("work order %s was claimed by another agent; skipping it", order.id)
                continue
            log.info("claimed work order %s (%s)", claimed.id, claimed.work_type)
            self.start(claimed, agent_id)
            free -= 1

    def start(self, order: wire.WorkOrder, agent_id: UUID) -> None:
        task = asyncio.create_task(self.execute(order, agent_id), name=f"work-order-{order.id}")
        self.running[order.id] = task
        task.add_done_callback(functools.partial(self.finished, order.id))

    def finished(self, order_id: UUID, _: asyncio.Task[None]) -> None:
        self.running.pop(order_id, None)

    async def execute(self, order: wire.WorkOrder, agent_id: UUID) -> None:
        """One order's task; nothing escapes it (no one awaits its result)."""
        try:
            result = await self.run(order, agent_id=agent_id)
            if result.success:
                log.info("work order %s succeeded: %s", order.id, result.message)
            else:
                log.warning(
                    "work order %s failed (%s): %s",
                    order.id,
                    "retryable" if result.retryable else "permanent",
                    result.message,
                )
            await self.report(order.id, result)
        except Exception:  # noqa: BLE001 - a bug must not kill the task silently
            log.exception("work order %s failed unexpectedly", order.id)

    async def report(self, order_id: UUID, result: WorkOrderResult) -> None:
        try:
            await self.client.work_orders.complete(
                order_id,
                success=result.success,
                message=result.message,
                retryable=result.retryable,
            )
        except (BrokkrConnectionError, ServerError) as exc:
            self.unreported[order_id] = result
            log.warning("reporting work order %s failed (%s); will report it again", order_id, exc)
            return
        except BrokkrAPIError as exc:
            log.warning("the broker refused the result of work order %s: %s", order_id, exc)
        self.unreported.pop(order_id, None)
