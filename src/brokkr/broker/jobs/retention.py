"""Retention: every declared retention (audit records, finished webhook deliveries, superseded
agent events; see ``services.retention``) runs at start and then hourly. Every broker runs it;
one broker at a time purges each table."""

from __future__ import annotations

from brokkr.broker import services
from brokkr.broker.jobs.periodic import Periodic
from brokkr.broker.services.context import Context

# Retention is counted in days, but a reload that shortens it should not wait a day to apply.
INTERVAL_SECONDS = 3600.0


class Retention(Periodic):
    name = "brokkr-retention"

    def __init__(self, ctx: Context, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(ctx)
        self._interval = interval

    def interval(self) -> float:
        return self._interval

    async def run_once(self) -> None:
        await services.retention.purge_all(self._ctx)
