"""Running telemetry shipping against the fake kube-apiserver, and what it offered."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

from brokkr.agent.kube import KubeCluster, TelemetryShipper
from brokkr.agent.manifests import OWNER_ID_ANNOTATION, STACK_ANNOTATION
from brokkr.agent.settings import AgentSection
from brokkr.agent.telemetry import STREAM_LOGS_ANNOTATION
from tests.agent.waiting import eventually
from tests.fakes.kube_apiserver import FakeKubeApiServer

Obj = dict[str, Any]
AGENT = uuid4()
OTHER_AGENT = uuid4()
STACK = uuid4()


class RecordingUplink:
    """The channel as telemetry sees it: keeps what it accepts; refuses while ``accepting`` is
    False (as a disconnected channel does)."""

    def __init__(self) -> None:
        self.accepting = True
        self.offered = 0
        self.frames: list[Obj] = []

    def offer(self, frame: bytes) -> bool:
        self.offered += 1
        if self.accepting:
            self.frames.append(json.loads(frame))
        return self.accepting

    def bodies(self, type_: str) -> list[Obj]:
        return [f["body"] for f in self.frames if f["type"] == type_]


def applied(
    manifest: Obj, *, agent: UUID = AGENT, stack: UUID = STACK, stream_logs: bool = False
) -> Obj:
    """``manifest`` as an agent applied it for ``stack`` (its stamps)."""
    stamped = copy.deepcopy(manifest)
    annotations = stamped["metadata"].setdefault("annotations", {})
    annotations[STACK_ANNOTATION] = str(stack)
    annotations[OWNER_ID_ANNOTATION] = str(agent)
    if stream_logs:
        annotations[STREAM_LOGS_ANNOTATION] = "true"
    return stamped


def watching(fake: FakeKubeApiServer, path: str) -> bool:
    return any("watch=true" in r.query for r in fake.requests_matching("GET", path))


@asynccontextmanager
async def shipping(
    fake: FakeKubeApiServer, cluster: KubeCluster, config: AgentSection, uplink: RecordingUplink
) -> AsyncIterator[None]:
    """``TelemetryShipper`` running as this agent until the block ends, from when its
    watches are open."""
    stop = asyncio.Event()
    shipper = TelemetryShipper(cluster.client, config, retry_delay=0.2)
    task = asyncio.create_task(shipper(uplink, agent_id=AGENT, stop=stop))
    paths = ["/api/v1/events"] * config.kube_events_enabled + ["/api/v1/pods"] * (
        config.pod_logs_enabled
    )
    try:
        await eventually(
            lambda: all(watching(fake, path) for path in paths), timeout=10, what="watches"
        )
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
