"""The agent's webhook task: deliver the events addressed to this agent's labels (D18).

A subscription with ``target_labels`` is delivered from inside a cluster carrying all of them,
so receivers that only the cluster can reach still get events. Each tick (every
``webhook_delivery_interval`` while the agent is ACTIVE) first reports the outcomes the broker
could not take before, then fetches this agent's pending deliveries (fetching claims them) and
POSTs them, all at once: the stored envelope verbatim, with ``X-Brokkr-Event``,
``X-Brokkr-Delivery-Id``, the broker-computed ``X-Brokkr-Signature`` (the secret never leaves
the broker) and the subscription's ``Authorization``. Redirects are not followed (a receiver
that moved is a failure to fix, not a hop to trust) and the whole request is bounded by the
subscription's timeout. Every outcome is reported with its status code and duration; retry
scheduling is the broker's. An outcome the broker cannot take now (unreachable, 5xx) is kept,
up to ``MAX_UNREPORTED``, and reported on a later tick; one it refuses (the claim expired and
the delivery went back to the queue, or it was deleted) is dropped with a warning: the broker
no longer waits for it. A PAK the broker rejects keeps the outcomes too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID

import httpx
import msgspec

import brokkr
from brokkr.client import (
    AsyncBrokkrClient,
    BrokkrAPIError,
    BrokkrConnectionError,
    ServerError,
    Unauthorized,
)
from brokkr.common import signing, wire

log = logging.getLogger(__name__)

# Deliveries POSTed at once: the most the broker hands out per poll (10), so every claimed
# delivery starts at once and ends within its timeout (at most 60 s), well inside its claim
# (90 s). Fewer slots would queue some behind slow receivers until their claims expired, and
# the broker would hand them out again: sent twice (flaw 6).
CONCURRENCY = 10
# Outcomes kept while the broker cannot take them; beyond this the oldest is dropped (its
# claim expires on the broker and the delivery is attempted again: delivered at least once).
MAX_UNREPORTED = 1000
# How much of a refusing receiver's body the reported error quotes.
ERROR_BODY_CHARS = 500
# What is read of a receiver's body at most: the error quotes only its start.
READ_LIMIT = 4 * ERROR_BODY_CHARS


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    success: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int


class WebhookDeliveries:
    def __init__(
        self,
        client: AsyncBrokkrClient,
        *,
        stop: asyncio.Event,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = client
        self.stop = stop
        self.receivers = httpx.AsyncClient(
            follow_redirects=False,
            headers={"User-Agent": f"brokkr-agent/{brokkr.__version__}"},
            transport=transport,
        )
        self.slots = asyncio.Semaphore(CONCURRENCY)
        # Outcomes of POSTed deliveries the broker has not taken yet, oldest first.
        self.unreported: dict[UUID, Outcome] = {}

    async def aclose(self) -> None:
        await self.receivers.aclose()

    async def poll(self, agent_id: UUID) -> None:
        """One tick: report what is owed, then claim, POST and report each pending delivery."""
        for delivery_id, outcome in list(self.unreported.items()):
            if not await self.report(delivery_id, outcome):
                return  # the broker is unreachable: the rest waits for the next tick
        if self.stop.is_set():
            return
        pending = await self.client.webhooks.pending(agent_id)
        # Owed ones are reported next tick: this agent still holds their claim.
        due = [delivery for delivery in pending if delivery.id not in self.unreported]
        await asyncio.gather(*(self.deliver_and_report(delivery) for delivery in due))

    async def deliver_and_report(self, delivery: wire.PendingWebhookDelivery) -> None:
        async with self.slots:
            outcome = await self.deliver(delivery)
        log.log(
            logging.DEBUG if outcome.success else logging.WARNING,
            "webhook delivery %s (%s) to subscription %s: %s",
            delivery.id,
            delivery.event_type,
            delivery.subscription_id,
            "delivered" if outcome.success else outcome.error,
        )
        await self.report(delivery.id, outcome)

    async def deliver(self, delivery: wire.PendingWebhookDelivery) -> Outcome:
        """POST one delivery; any failure is its outcome, never an exception."""
        headers = {
            "Content-Type": "application/json",
            "X-Brokkr-Event": delivery.event_type,
            "X-Brokkr-Delivery-Id": str(delivery.id),
        }
        if delivery.signature:
            headers[signing.HEADER] = delivery.signature
        if delivery.auth_header:
            headers["Authorization"] = delivery.auth_header
        started = time.perf_counter()
        try:
            # The subscription's timeout bounds the whole exchange, not each read.
            async with asyncio.timeout(delivery.timeout_seconds):
                status, body = await self.post(delivery, headers)
        except TimeoutError:
            return failed(started, f"request timed out after {delivery.timeout_seconds} s")
        except httpx.ConnectError as exc:
            return failed(started, f"connection failed: {exc}")
        except httpx.HTTPError as exc:
            return failed(started, f"request error: {exc}")
        except Exception as exc:  # noqa: BLE001 - any failure is this delivery's outcome
            return failed(started, f"error: {exc}")
        if 200 <= status < 300:
            return Outcome(success=True, status_code=status, duration_ms=elapsed_ms(started))
        text = body.decode("utf-8", errors="replace")[:ERROR_BODY_CHARS]
        return failed(started, f"HTTP {status}: {text}", status_code=status)

    async def post(
        self, delivery: wire.PendingWebhookDelivery, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """The receiver's status and the start of its body (a huge body is not read whole)."""
        body = bytearray()
        request = self.receivers.stream(
            "POST",
            delivery.url,
            content=delivery.payload.encode(),
            headers=headers,
            timeout=delivery.timeout_seconds,
        )
        async with request as response:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= READ_LIMIT:
                    break
        return response.status_code, bytes(body)

    async def report(self, delivery_id: UUID, outcome: Outcome) -> bool:
        """Report one outcome; False when it is kept for a later tick."""
        try:
            await self.client.webhooks.report_result(
                delivery_id,
                success=outcome.success,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        except (BrokkrConnectionError, ServerError, Unauthorized) as exc:
            # A rejected PAK too: the outcome is still true once an operator fixes the PAK.
            self.keep(delivery_id, outcome)
            log.warning(
                "reporting webhook delivery %s failed (%s); will report it again", delivery_id, exc
            )
            return False
        except BrokkrAPIError as exc:
            log.warning(
                "the broker refused the outcome of webhook delivery %s: %s", delivery_id, exc
            )
        self.unreported.pop(delivery_id, None)
        return True

    def keep(self, delivery_id: UUID, outcome: Outcome) -> None:
        self.unreported[delivery_id] = outcome
        while len(self.unreported) > MAX_UNREPORTED:
            dropped = next(iter(self.unreported))
            del self.unreported[dropped]
            log.error(
                "dropping the unreported outcome of webhook delivery %s (more than %d owed); "
                "the broker will deliver it again once its claim expires",
                dropped,
                MAX_UNREPORTED,
            )


def elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def failed(started: float, error: str, *, status_code: int | None = None) -> Outcome:
    return Outcome(
        success=False, status_code=status_code, error=error, duration_ms=elapsed_ms(started)
    )
