"""Work-order maintenance: due retries back to PENDING, stale claims released (D17). Every
broker runs it; the run itself is safe with several brokers on one database (D21). The interval
is read from the settings in force before every sleep, so a reload applies to the next one."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from brokkr.broker import services
from brokkr.broker.services.context import Context

log = logging.getLogger(__name__)


class WorkOrderMaintenance:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="brokkr-work-order-maintenance")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            interval = self._ctx.settings.current.limits.work_order_maintenance_interval_seconds
            try:
                await services.work_orders.maintain(self._ctx)
            except Exception:  # noqa: BLE001 - a failed run (database away) must not end the job
                log.warning(
                    "work-order maintenance failed; retrying in %gs", interval, exc_info=True
                )
            await asyncio.sleep(interval)
