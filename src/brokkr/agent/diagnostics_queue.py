"""The agent's diagnostics task: answer the on-demand diagnostic requests addressed to it.

Each tick (every ``diagnostics_interval`` while the agent is ACTIVE) lists this agent's pending
requests, oldest first, and handles them one at a time: claim, collect, submit. A request is
claimed only just before it is collected, so the ones still waiting stay pending (and expire on
the broker if the agent never gets to them). Losing a claim (409: another process of this agent
took it, or it expired meanwhile; 404: deleted) is normal and skipped quietly.

What is collected is what that deployment object applied, as ``Runtime.running()`` knows it:
for an object this agent has not applied (superseded, deleted, failed, or never targeted), or
when collecting fails or outlasts ``diagnostics_timeout``, a result is still submitted, with
one ``NotApplied`` or ``CollectionFailed`` event saying why, so the requester gets an answer
instead of a claim that times out. Every document is encoded by msgspec: valid JSON whatever an
error message holds (flaw 21). A result the broker cannot take now (unreachable, 5xx) is kept
and submitted on a later tick; one it refuses (the claim was failed as stale) is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import CollectDiagnostics, Diagnosis
from brokkr.client import (
    AsyncBrokkrClient,
    BrokkrAPIError,
    BrokkrConnectionError,
    Conflict,
    NotFound,
    ServerError,
)
from brokkr.common import wire

log = logging.getLogger(__name__)

NOT_APPLIED = "NotApplied"
COLLECTION_FAILED = "CollectionFailed"

Running = Callable[[], Mapping[UUID, tuple[ObjectRef, ...]]]


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    diagnosis: Diagnosis
    collected_at: datetime


class DiagnosticsQueue:
    def __init__(
        self,
        client: AsyncBrokkrClient,
        collect: CollectDiagnostics,
        running: Running,
        *,
        timeout: float,
        stop: asyncio.Event,
    ) -> None:
        self.client = client
        self.collect = collect
        self.running = running
        self.timeout = timeout
        self.stop = stop
        # Answers the broker could not take yet, by request id.
        self.unsubmitted: dict[UUID, Answer] = {}

    async def poll(self, agent_id: UUID) -> None:
        """One tick: submit what is owed, then claim, collect and submit each pending request."""
        for request_id, answer in list(self.unsubmitted.items()):
            await self.submit(request_id, answer)
        pending = await self.client.diagnostics.list_pending(agent_id)
        for request in pending:
            if self.stop.is_set():
                return
            if request.id in self.unsubmitted:
                continue
            try:
                await self.client.diagnostics.claim(request.id)
            except (Conflict, NotFound) as exc:
                log.info("diagnostic request %s not claimable (%s); skipping it", request.id, exc)
                continue
            log.info(
                "collecting diagnostics of deployment object %s (request %s)",
                request.deployment_object_id,
                request.id,
            )
            answer = await self.answer(request.deployment_object_id)
            await self.submit(request.id, answer)

    async def answer(self, deployment_object_id: UUID) -> Answer:
        """The diagnosis of one deployment object, or a result explaining why there is none."""
        objects = self.running().get(deployment_object_id)
        if objects is None:
            diagnosis = explained(
                NOT_APPLIED,
                f"deployment object {deployment_object_id} is not applied by this agent: it "
                "was superseded, deleted or failed, its stack is not targeted at this agent, "
                "or the agent has not applied it since it started",
            )
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    diagnosis = await self.collect(objects)
            except TimeoutError:
                diagnosis = explained(
                    COLLECTION_FAILED, f"collecting took longer than {self.timeout:g} s"
                )
            except Exception as exc:  # noqa: BLE001 - any failure is the requester's answer
                log.warning("collecting diagnostics of %s failed: %s", deployment_object_id, exc)
                diagnosis = explained(COLLECTION_FAILED, f"collecting failed: {exc}")
        return Answer(diagnosis=diagnosis, collected_at=datetime.now(UTC))

    async def submit(self, request_id: UUID, answer: Answer) -> None:
        try:
            await self.client.diagnostics.submit(
                request_id,
                pod_statuses=answer.diagnosis.pod_statuses,
                events=answer.diagnosis.events,
                log_tails=answer.diagnosis.log_tails,
                collected_at=answer.collected_at,
            )
        except (BrokkrConnectionError, ServerError) as exc:
            self.unsubmitted[request_id] = answer
            log.warning(
                "submitting diagnostic request %s failed (%s); will submit it again",
                request_id,
                exc,
            )
            return
        except BrokkrAPIError as exc:
            log.warning(
                "the broker refused the result of diagnostic request %s: %s", request_id, exc
            )
        self.unsubmitted.pop(request_id, None)


def explained(reason: str, message: str) -> Diagnosis:
    """A result with no pods and one event saying why (valid JSON whatever ``message`` holds)."""
    event = wire.DiagnosticEvent(
        event_type="Warning",
        reason=reason,
        message=message,
        involved_object="diagnostics",
        last_timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    # No log tails at all (null), as the reference answers when it could not list the pods.
    return Diagnosis(pod_statuses="[]", events=msgspec.json.encode([event]).decode())
