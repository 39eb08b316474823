"""Audit retention: delete records older than ``broker.audit_log_retention_days`` (read from
the settings in force at every run, so a reload applies to the next one)."""

from __future__ import annotations

from brokkr.broker import services
from brokkr.broker.jobs.periodic import Periodic
from brokkr.broker.services.context import Context

# Runs at start and then hourly: retention is counted in days, but a reload that shortens it
# should not wait a day to take effect.
INTERVAL_SECONDS = 3600.0


class AuditRetention(Periodic):
    name = "brokkr-audit-retention"

    def __init__(self, ctx: Context, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(ctx)
        self._interval = interval

    def interval(self) -> float:
        return self._interval

    async def run_once(self) -> None:
        await services.audit.purge_expired(self._ctx)
