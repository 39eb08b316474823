"""Stack telemetry read back over REST: Kubernetes events and pod log lines the agents streamed,
kept for a bounded window (at most six hours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

# The hard upper bound of the telemetry window: Brokkr is not a log warehouse.
RETENTION_CEILING_SECONDS = 21_600


class AgentK8sEvent(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    stack_id: UUID
    observed_at: datetime
    reason: str
    message: str
    event_type: str
    source: str | None = None
    involved_object: dict[str, Any]
    created_at: datetime


class AgentPodLog(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    stack_id: UUID
    namespace: str
    pod: str
    container: str
    ts: datetime
    line: str
    created_at: datetime


class RetentionInfo(msgspec.Struct, kw_only=True, frozen=True):
    """``oldest_available_ts``: the oldest row of this answer, null when it has none."""

    retention_ceiling_seconds: int
    effective_retention_seconds: int
    oldest_available_ts: datetime | None = None
    long_term_sink_hint: str


class K8sEventHistoryResponse(msgspec.Struct, kw_only=True, frozen=True):
    retention: RetentionInfo
    events: list[AgentK8sEvent]


class PodLogHistoryResponse(msgspec.Struct, kw_only=True, frozen=True):
    retention: RetentionInfo
    lines: list[AgentPodLog]


class WsConnectionInfo(msgspec.Struct, kw_only=True, frozen=True):
    agent_id: UUID
    connected_since: datetime
    messages_in: int
    messages_out: int


class WsConnectionsResponse(msgspec.Struct, kw_only=True, frozen=True):
    """The agents on this broker's channel and its live-stream subscribers."""

    connected_agents: int
    connections: list[WsConnectionInfo]
    live_subscribers: int
