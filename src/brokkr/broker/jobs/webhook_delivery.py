"""The webhook delivery worker (D18, D21): claims due deliveries and POSTs them.

It wakes when a commit queued deliveries (``ctx.webhooks_due``, set here or by another broker's
NOTIFY) or every ``broker.webhook_delivery_interval_seconds`` for retries falling due and
claims gone stale. It claims only as many deliveries as it has free request slots
(``broker.webhook_delivery_concurrency``, at most ``broker.webhook_delivery_batch_size`` at a
time), so a claimed delivery is sent at once and its claim covers the request. Outcomes are
written in batches by one recorder task, each batch a short transaction; the API never waits
on any of it. On stop, requests in flight finish (at most a subscription timeout) and their
outcomes are written; a broker killed instead leaves claims that expire and are sent again
(at least once: receivers deduplicate by the envelope id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from brokkr.broker import services
from brokkr.broker.domain import webhook_delivery as rules
from brokkr.broker.services.context import Context
from brokkr.broker.services.webhook_deliveries import Dispatch
from brokkr.broker.webhook_sender import Sender

log = logging.getLogger(__name__)

# How long a failed claim or record waits before it is tried again (database away).
_PAUSE_SECONDS = 1.0
DENIED = "the URL points into a network denied by broker.webhook_denied_networks"


class WebhookDelivery:
    name = "brokkr-webhook-delivery"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._sender: Sender | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._done: asyncio.Queue[tuple[Dispatch, rules.Outcome, float]] = asyncio.Queue()

    def start(self) -> None:
        if self._loop_task is not None:
            return
        self._sender = Sender()
        self._loop_task = asyncio.create_task(self._claim_loop(self._sender), name=self.name)
        self._recorder = asyncio.create_task(self._record_loop(), name=f"{self.name}-recorder")

    async def stop(self) -> None:
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._loop_task = None
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        # Outcomes not written by then are lost with their claims: those expire and the
        # deliveries are sent again by whichever broker runs next.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.join(), rules.CLAIM_MARGIN_SECONDS)
        if self._recorder is not None:
            self._recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recorder
            self._recorder = None
        if self._sender is not None:
            await self._sender.close()
            self._sender = None

    async def _claim_loop(self, sender: Sender) -> None:
        due = self._ctx.webhooks_due
        while True:
            broker = self._ctx.settings.current.broker
            batch = min(broker.webhook_delivery_batch_size, broker.webhook_delivery_concurrency)
            free = broker.webhook_delivery_concurrency - len(self._in_flight)
            # Under load, claim once half a batch of slots is free rather than one by one:
            # fewer, larger claim transactions.
            if self._in_flight and free < max(1, batch // 2):
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            wanted = min(free, broker.webhook_delivery_batch_size)
            # Cleared before claiming: a commit from now on wakes the next wait.
            due.clear()
            try:
                claimed = await services.webhook_deliveries.claim(self._ctx, limit=wanted)
            except Exception:  # noqa: BLE001 - a failed claim (database away) must not end the job
                log.warning("claiming webhook deliveries failed; retrying", exc_info=True)
                await asyncio.sleep(_PAUSE_SECONDS)
                continue
            for dispatch in claimed:
                task = asyncio.create_task(
                    self._send(sender, dispatch), name=f"webhook-{dispatch.id}"
                )
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if len(claimed) < wanted:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(due.wait(), broker.webhook_delivery_interval_seconds)

    async def _send(self, sender: Sender, dispatch: Dispatch) -> None:
        started = time.monotonic()
        # Checked when sending: a host name may resolve anywhere, and the list may have changed.
        if await services.webhooks.denied_destination(self._ctx, dispatch.url):
            outcome = rules.Outcome(success=False, error=DENIED, final=True)
        else:
            outcome = await sender.post(
                dispatch.url, dispatch.body, dispatch.headers, timeout=dispatch.timeout
            )
        self._done.put_nowait((dispatch, outcome, time.monotonic() - started))

    async def _record_loop(self) -> None:
        while True:
            batch = [await self._done.get()]
            while not self._done.empty():
                batch.append(self._done.get_nowait())
            try:
                await self._record(batch)
            finally:
                for _ in batch:
                    self._done.task_done()

    async def _record(self, batch: list[tuple[Dispatch, rules.Outcome, float]]) -> None:
        while True:
            try:
                verdicts = await services.webhook_deliveries.record(
                    self._ctx, [(dispatch, outcome) for dispatch, outcome, _ in batch]
                )
                break
            except Exception:  # noqa: BLE001 - keep the outcomes until the database answers
                log.warning("recording webhook outcomes failed; retrying", exc_info=True)
                await asyncio.sleep(_PAUSE_SECONDS)
        for (dispatch, _, seconds), verdict in zip(batch, verdicts, strict=True):
            if verdict.status != rules.SUCCESS:
                log.info(
                    "webhook delivery %s (%s): %s after %d attempt(s): %s",
                    dispatch.id,
                    dispatch.event_type,
                    verdict.status,
                    verdict.attempts,
                    verdict.last_error,
                )
            self._ctx.webhook_delivered(verdict.status, seconds)
