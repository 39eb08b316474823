"""Work-order maintenance: due retries back to PENDING, stale claims released (D17). One broker
process of the database runs each turn; the run itself would be safe with several at once
(D21). The interval is read from the settings in force before every turn, so a reload applies to
the next one."""

from __future__ import annotations

from brokkr.broker import services
from brokkr.broker.jobs.periodic import Periodic


class WorkOrderMaintenance(Periodic):
    name = "brokkr-work-order-maintenance"

    def interval(self) -> float:
        return self._ctx.settings.current.limits.work_order_maintenance_interval_seconds

    async def run_once(self) -> None:
        await services.work_orders.maintain(self._ctx)
