"""The loop every job shares: one run at start, then one every interval until stopped; a failed
run is logged (to the job's own module logger) and the next one retries."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

from brokkr.broker.services.context import Context


class Periodic(abc.ABC):
    """Subclasses name the job and say what one run does and how long to wait after it."""

    name = "brokkr-job"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._log = logging.getLogger(type(self).__module__)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    @abc.abstractmethod
    def interval(self) -> float: ...

    @abc.abstractmethod
    async def run_once(self) -> None: ...

    async def _loop(self) -> None:
        while True:
            # Read before every run, so a reload applies to the next sleep.
            interval = self.interval()
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - a failed run (database away) must not end the job
                self._log.warning("%s failed; retrying in %gs", self.name, interval, exc_info=True)
            await asyncio.sleep(interval)
