"""Kubernetes event shipping (agent.md §10, fixing flaw 16): the core/v1 Events of the objects
of this agent's stacks, and of what those objects own (their ReplicaSets, Pods, Jobs), offered
to the channel as ``k8s_event`` frames.

At start (and after a relist) the events observed within the last ``RECENT_SECONDS`` are
shipped too, so an agent restart does not hide what is failing right now; an event already
shipped (same uid and resourceVersion) is not shipped again. A repeated event (its count went
up: MODIFIED) is shipped again, as the new observation it is. An offer the channel refuses is
lost: events have no REST path.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from brokkr.agent.kube.stack_owners import StackOwners
from brokkr.agent.outcomes import Uplink
from brokkr.agent.telemetry import involved_object, k8s_event_body, observed_at
from brokkr.common.wire import channel

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PATH = "/api/v1/events"
RECENT_SECONDS = 300.0
# (uid, resourceVersion) of the events shipped lately, so a relist does not ship them again.
SHIPPED_MEMORY = 4096


def _now() -> datetime:
    return datetime.now(UTC)


class EventShipper:
    """The ``WatchHandler`` of the Events watch."""

    def __init__(
        self,
        owners: StackOwners,
        uplink: Uplink,
        agent_id: UUID,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._owners = owners
        self._uplink = uplink
        self._agent_id = agent_id
        self._clock = clock
        self._shipped: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def listed(self, items: list[Obj], *, first: bool) -> None:
        now = self._clock()
        recent = now - timedelta(seconds=RECENT_SECONDS)
        for event in items:
            if observed_at(event, now) >= recent:
                await self.ship(event)

    async def changed(self, kind: str, obj: Obj) -> None:
        if kind in ("ADDED", "MODIFIED"):
            await self.ship(obj)

    async def ship(self, event: Obj) -> None:
        meta = event.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        key = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
        if key in self._shipped:
            return
        involved = involved_object(event)
        if involved is None:
            return
        owner = await self._owners.of_reference(
            involved.api_version, involved.kind, involved.namespace, involved.name, involved.uid
        )
        if owner is None:
            return
        self._shipped[key] = None
        while len(self._shipped) > SHIPPED_MEMORY:
            self._shipped.popitem(last=False)
        body = k8s_event_body(
            event, involved, agent_id=self._agent_id, stack_id=owner.stack_id, now=self._clock()
        )
        self._uplink.offer(channel.frame(channel.K8S_EVENT, body))
