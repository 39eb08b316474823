"""The agent's deployment-health task: assess what runs, report what changed, and all of it
now and then.

Each tick (every ``deployment_health_check_interval``, while the agent is ACTIVE) assesses every
deployment object the runtime says is running (``Runtime.running()``: the newest object applied
successfully per stack; superseded, deleted and failed ones drop out, and are forgotten here,
never reported again, flaw 14). It reports in one ``PATCH /agents/{id}/health-status`` per
``MAX_ENTRIES_PER_REPORT`` entries the objects whose status or summary changed since their last
report, and every object at least every ``deployment_health_interval``, so the broker never
reads a live object as stale.

While the broker channel is up, each entry goes first as its own ``agent_health`` frame, and
only the entries the broker did not acknowledge go in the REST batch: an acknowledged entry is
never reported twice (flaw 15), an unacknowledged one never lost.

A 422 ``invalid_health_report`` names the refused entries (an object deleted or unassigned
since this agent applied it): the rest is sent again at once, and the refused objects are not
sent again until their assessment changes. Any other failure is raised for the periodic task to
back off; nothing is marked as reported, so the next tick sends it all again.

Polling, not watching, measured with ``bench/agent_health.py`` on the fake API server (one
namespace, 3 pods per Deployment): a pass costs 3 requests per workload (GET it, LIST its
ReplicaSets and its pods by selector) and nothing else: 50 Deployments, 150 requests in about
0.26 s, as long as 150 bare ``GET /version``; 200 Deployments, 600 requests in 2 to 3.4 s
(the fake's LIST grows with the namespace). A watcher would pay 2 LISTs (33 ms at 150 pods,
170 ms at 600) and hold 2 streams per namespace and kind, then nothing between changes, but it
must cache every pod of those namespaces, resync after each disconnect or ``410 Gone``, and
still map pods to workloads by selector. Polling at the default 10 s costs 30 requests a
second per hundred workloads, cheap selective reads, bounded, stateless and exact at every
pass; an agent with many hundreds of workloads raises ``deployment_health_check_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from brokkr.agent.assessing import Assessment
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import CheckHealth
from brokkr.client import AsyncBrokkrClient, ValidationFailed
from brokkr.common import wire
from brokkr.common.wire import channel as frames

log = logging.getLogger(__name__)

# Well under the broker's default limit of 1000 entries per report.
MAX_ENTRIES_PER_REPORT = 500
# Deployment objects assessed at once: enough to hide API latency, few enough to stay polite.
CONCURRENT_CHECKS = 8
INVALID_REPORT = "invalid_health_report"
# Entries awaiting the broker's ack at once: the channel's control lane (heartbeats, deploy
# events) must keep room beside them.
ACKED_IN_FLIGHT = 32

SendAcked = Callable[[str, object], Awaitable[bool]]


class _Sent(msgspec.Struct, frozen=True):
    assessment: Assessment
    at: float


class HealthReports:
    def __init__(
        self,
        client: AsyncBrokkrClient,
        check: CheckHealth,
        *,
        resend_after: float,
        clock: Callable[[], float] = time.monotonic,
        send_acked: SendAcked | None = None,
    ) -> None:
        self.client = client
        # The broker channel's acknowledged send (``Channel.send_acked``), when there is one.
        self.send_acked = send_acked
        self.check = check
        self.resend_after = resend_after
        self.clock = clock
        # What was last reported per deployment object, and when (``clock``).
        self.sent: dict[UUID, _Sent] = {}
        # Assessments the broker refused: not sent again until they change.
        self.refused: dict[UUID, Assessment] = {}

    @property
    def tracked(self) -> int:
        return len(self.sent)

    async def tick(self, agent_id: UUID, running: Mapping[UUID, tuple[ObjectRef, ...]]) -> int:
        """Assess ``running`` and report what is due; the number of entries the broker took."""
        self.sent = {key: sent for key, sent in self.sent.items() if key in running}
        self.refused = {key: last for key, last in self.refused.items() if key in running}
        assessed = await self.assess(running)
        now = self.clock()
        due: dict[UUID, wire.DeploymentObjectHealthUpdate] = {}
        for key, (assessment, checked_at) in assessed.items():
            if self.refused.get(key) == assessment:
                continue
            self.refused.pop(key, None)
            last = self.sent.get(key)
            if last is None or last.assessment != assessment or now - last.at >= self.resend_after:
                due[key] = wire.DeploymentObjectHealthUpdate(
                    id=key,
                    status=assessment.status,
                    checked_at=checked_at,
                    summary=assessment.summary,
                )
        taken = 0
        for key in await self.report_acked(agent_id, due):
            self.sent[key] = _Sent(assessed[key][0], now)
            del due[key]
            taken += 1
        keys = list(due)
        for start in range(0, len(keys), MAX_ENTRIES_PER_REPORT):
            chunk = keys[start : start + MAX_ENTRIES_PER_REPORT]
            for key in await self.report(agent_id, [due[key] for key in chunk], assessed):
                self.sent[key] = _Sent(assessed[key][0], now)
                taken += 1
        return taken

    async def assess(
        self, running: Mapping[UUID, tuple[ObjectRef, ...]]
    ) -> dict[UUID, tuple[Assessment, datetime]]:
        slots = asyncio.Semaphore(CONCURRENT_CHECKS)

        async def one(applied: tuple[ObjectRef, ...]) -> tuple[Assessment, datetime]:
            async with slots:
                checked_at = datetime.now(UTC)
                return await self.check(applied), checked_at

        keys = list(running)
        results = await asyncio.gather(*(one(running[key]) for key in keys))
        return dict(zip(keys, results, strict=True))

    async def report_acked(
        self, agent_id: UUID, due: Mapping[UUID, wire.DeploymentObjectHealthUpdate]
    ) -> list[UUID]:
        """Send each of ``due`` over the channel; the ids the broker acknowledged (none when
        the channel is down: each send then says no at once)."""
        send = self.send_acked
        if send is None or not due:
            return []
        slots = asyncio.Semaphore(ACKED_IN_FLIGHT)
        # Once one entry goes unacknowledged (the channel went down, the broker is slow or
        # refused it), the rest go over REST rather than each waiting for its own timeout.
        failed = False

        async def one(update: wire.DeploymentObjectHealthUpdate) -> bool:
            nonlocal failed
            body = frames.AgentHealthBody(
                agent_id=agent_id,
                deployment_object_id=update.id,
                status=update.status,
                summary=None if update.summary is None else _json(update.summary),
                checked_at=update.checked_at,
            )
            async with slots:
                if failed:
                    return False
                acked = await send(frames.AGENT_HEALTH, body)
            failed = failed or not acked
            return acked

        keys = list(due)
        acked = await asyncio.gather(*(one(due[key]) for key in keys))
        return [key for key, ok in zip(keys, acked, strict=True) if ok]

    async def report(
        self,
        agent_id: UUID,
        updates: list[wire.DeploymentObjectHealthUpdate],
        assessed: Mapping[UUID, tuple[Assessment, datetime]],
    ) -> list[UUID]:
        """Send ``updates``; the ids the broker took. Entries it refuses are dropped (and
        remembered as refused) and the rest sent once more."""
        try:
            await self.client.health.report(agent_id, updates)
        except ValidationFailed as exc:
            refused = _refused_ids(exc)
            if refused is None:
                raise
            log.warning(
                "the broker refused the health of %d deployment object(s) (%s); "
                "sending the others again",
                len(refused),
                exc.message,
            )
            for key in refused:
                if key in assessed:
                    self.refused[key] = assessed[key][0]
            rest = [update for update in updates if update.id not in refused]
            if not rest:
                return []
            await self.client.health.report(agent_id, rest)
            return [update.id for update in rest]
        return [update.id for update in updates]


def _json(summary: wire.HealthSummary) -> str:
    return msgspec.json.encode(summary).decode()


def _refused_ids(exc: ValidationFailed) -> set[UUID] | None:
    """The entries a 422 ``invalid_health_report`` names; None when it is another error or
    names the whole batch (no entry id), which sending less would not cure."""
    if exc.code != INVALID_REPORT:
        return None
    ids: set[UUID] = set()
    for entry in exc.details.get("entries") or []:
        raw = entry.get("id") if isinstance(entry, dict) else None
        if raw is None:
            return None
        try:
            ids.add(UUID(str(raw)))
        except ValueError:
            return None
    return ids or None
