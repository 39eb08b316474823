"""``TelemetryShipper``: the ``ShipTelemetry`` of ``brokkr.agent.outcomes``, running event
shipping and pod log shipping (each switched by its setting) until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any
from uuid import UUID

from brokkr.agent.kube import event_shipping, pod_logs
from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.discovering import Discovery
from brokkr.agent.kube.event_shipping import EventShipper
from brokkr.agent.kube.pod_logs import PodLogShipper
from brokkr.agent.kube.stack_owners import StackOwners
from brokkr.agent.kube.streams import Streams
from brokkr.agent.kube.watching import RETRY_SECONDS, list_and_watch
from brokkr.agent.outcomes import Uplink
from brokkr.agent.settings import AgentSection
from brokkr.agent.telemetry import OwnerCache

# How long a uid's stack (or "none") is trusted: annotations change, objects are re-created.
OWNER_TTL_SECONDS = 300.0


class TelemetryShipper:
    def __init__(
        self, client: KubeClient, config: AgentSection, *, retry_delay: float = RETRY_SECONDS
    ) -> None:
        self._client = client
        self._config = config
        self._retry_delay = retry_delay

    async def __call__(self, uplink: Uplink, *, agent_id: UUID, stop: asyncio.Event) -> None:
        config = self._config
        if not (config.kube_events_enabled or config.pod_logs_enabled):
            await stop.wait()
            return
        streams = Streams(self._client.config)
        cache = OwnerCache(config.kube_event_uid_cache_cap, OWNER_TTL_SECONDS)
        owners = StackOwners(self._client, Discovery(self._client), agent_id, cache)
        jobs: list[Coroutine[Any, Any, None]] = []
        logs: PodLogShipper | None = None
        if config.kube_events_enabled:
            events = EventShipper(owners, uplink, agent_id)
            jobs.append(self._watch(streams, event_shipping.PATH, events))
        if config.pod_logs_enabled:
            logs = PodLogShipper(
                owners, streams, uplink, agent_id, lines_per_second=config.pod_log_lines_per_second
            )
            jobs += [self._watch(streams, pod_logs.PATH, logs), logs.report_gaps()]
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
                if logs is not None:
                    await logs.aclose()
            await streams.aclose()

    async def _watch(
        self, streams: Streams, path: str, handler: EventShipper | PodLogShipper
    ) -> None:
        await list_and_watch(self._client, streams, path, handler, retry_delay=self._retry_delay)
