"""Diagnostic maintenance: unclaimed requests expire, unanswered claims fail, and requests that
ended long ago are deleted with their results. One broker process of the database runs each
turn; the run itself would be safe with several at once (D21). The interval is read from the
settings in force before every turn, so a reload applies to the next one."""

from __future__ import annotations

from brokkr.broker import services
from brokkr.broker.jobs.periodic import Periodic


class DiagnosticMaintenance(Periodic):
    name = "brokkr-diagnostic-maintenance"

    def interval(self) -> float:
        return self._ctx.settings.current.broker.diagnostic_cleanup_interval_seconds

    async def run_once(self) -> None:
        await services.diagnostics.maintain(self._ctx)
