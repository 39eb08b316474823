"""Audit retention: delete records older than ``broker.audit_log_retention_days`` (read from
the settings in force at every run, so a reload applies to the next one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from brokkr.broker import services
from brokkr.broker.services.context import Context

log = logging.getLogger(__name__)

# Runs at start and then hourly: retention is counted in days, but a reload that shortens it
# should not wait a day to take effect.
INTERVAL_SECONDS = 3600.0


class AuditRetention:
    def __init__(self, ctx: Context, *, interval: float = INTERVAL_SECONDS) -> None:
        self._ctx = ctx
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="brokkr-audit-retention")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await services.audit.purge_expired(self._ctx)
            except Exception:  # noqa: BLE001 - a failed run (database away) must not end the job
                log.warning(
                    "audit retention run failed; retrying in %gs", self._interval, exc_info=True
                )
            await asyncio.sleep(self._interval)
