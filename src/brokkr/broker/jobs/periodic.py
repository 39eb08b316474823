"""The loop every job shares. Each time a job falls due, one broker process runs it: of all
those on the database, or for a job of the server (``per_server``) of the workers of one
``brokkr serve``. Every process claims the job's turn in the database first
(``services.job_schedule``); the one that wins runs the job, the others sleep until it is due
again. A job is due at once when first seen, so a lone broker still runs it at start. A failed
claim or run (database away) is logged (to the job's own module logger) and retried."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random

from brokkr.broker import services
from brokkr.broker.services.context import Context

# Whatever the database says, a loop never claims more often than this (nor than its interval).
FLOOR_SECONDS = 0.5
# Losers wake up to this much after the due time, so they do not all claim at the same instant.
JITTER_SECONDS = 0.25
# How long stopping waits for a turn under way to end before cancelling it.
STOP_SECONDS = 10.0


class Periodic(abc.ABC):
    """Subclasses name the job and say what one run does and how long to wait after it."""

    name = "brokkr-job"
    # False: one run per interval for the whole database; True: one per ``brokkr serve`` (its
    # workers share one turn, other servers have their own).
    per_server = False

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._log = logging.getLogger(type(self).__module__)

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """End the loop between turns: a claim or run cancelled inside a SQLite statement would
        leak its connection. One that takes longer than STOP_SECONDS is cancelled after all."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_SECONDS)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the job is stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def turn_key(self) -> str:
        """The job's row in the schedule: its name, qualified by the server when per server."""
        if self.per_server:
            return f"{self.name}@{self._ctx.server_id}"
        return self.name

    @abc.abstractmethod
    def interval(self) -> float: ...

    @abc.abstractmethod
    async def run_once(self) -> None: ...

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            # Read before every claim, so a reload applies to the next turn and sleep.
            interval = self.interval()
            try:
                turn = await services.job_schedule.claim(
                    self._ctx, self.turn_key(), interval=interval
                )
            except Exception:  # noqa: BLE001 - a failed claim (database away) must not end the job
                self._log.warning(
                    "%s could not claim its turn; retrying in %gs",
                    self.name,
                    interval,
                    exc_info=True,
                )
                await self._pause(interval)
                continue
            if turn.won:
                try:
                    await self.run_once()
                except Exception:  # noqa: BLE001 - a failed run (database away) must not end the job
                    self._log.warning(
                        "%s failed; retrying in %gs", self.name, interval, exc_info=True
                    )
            await self._pause(_until_due(turn.due_in, interval))


def _until_due(due_in: float, interval: float) -> float:
    """Sleep until the turn is due (a loser: plus jitter), but never longer than the interval in
    force (another broker may use a longer one) nor shorter than the floor."""
    jitter = random.uniform(0, JITTER_SECONDS)  # noqa: S311 - jitter, not security
    return min(interval, max(min(FLOOR_SECONDS, interval), due_in + jitter))
