"""Fleet gauges: counted from the database every few seconds and handed to /metrics, which
serves the last counts. A scrape never queries the database, so scraping often (or several
Prometheus servers) costs the database nothing more. Each ``brokkr serve`` counts once for all
its workers (one of them per turn) and has its own /metrics: the numbers are fleet-wide, so
dashboards take the max over servers."""

from __future__ import annotations

from collections.abc import Callable

from brokkr.broker import services
from brokkr.broker.domain import gauges
from brokkr.broker.jobs.periodic import Periodic
from brokkr.broker.services.context import Context

INTERVAL_SECONDS = 15.0


class GaugeRefresh(Periodic):
    name = "brokkr-gauge-refresh"
    per_server = True

    def __init__(
        self,
        ctx: Context,
        publish: Callable[[gauges.Snapshot], None],
        *,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        super().__init__(ctx)
        self._publish = publish
        self._interval = interval

    def interval(self) -> float:
        return self._interval

    async def run_once(self) -> None:
        self._publish(await services.gauges.snapshot(self._ctx))
