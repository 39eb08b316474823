"""Retention: every declared retention (audit records, finished webhook deliveries, superseded
agent events, stack telemetry; see ``services.retention``) runs every five minutes, once per
database (one broker process per turn, the first at start), and then the schedule forgets the
jobs of servers that stopped long ago (their per-server gauge turns)."""

from __future__ import annotations

from brokkr.broker import services
from brokkr.broker.jobs.periodic import Periodic
from brokkr.broker.services.context import Context

# Telemetry is kept for hours at most and arrives fast: evicted in small, frequent passes (the
# other tables' passes find nothing to delete almost every time, at one indexed query each).
INTERVAL_SECONDS = 300.0


class Retention(Periodic):
    name = "brokkr-retention"

    def __init__(self, ctx: Context, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(ctx)
        self._interval = interval

    def interval(self) -> float:
        return self._interval

    async def run_once(self) -> None:
        await services.retention.purge_all(self._ctx)
        await services.job_schedule.forget_idle(self._ctx)
