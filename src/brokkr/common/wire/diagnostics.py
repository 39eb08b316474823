"""On-demand diagnostics: an operator asks one agent for the pods, events and log tails of one
deployment object. The result's three documents travel as JSON strings (the reference's wire
shape); ``PodStatus``, ``DiagnosticEvent`` and ``LogTails`` are what those strings hold, written
by the agent and read by the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

DiagnosticStatus = Literal["pending", "claimed", "completed", "failed", "expired"]


class CreateDiagnosticRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``retention_minutes`` (1..1440, default 60): how long the request waits for its agent."""

    agent_id: UUID
    requested_by: str | None = None
    retention_minutes: int | None = None


class DiagnosticRequest(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    deployment_object_id: UUID
    status: str
    requested_by: str | None = None
    created_at: datetime
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime
    # Why the request ended failed or expired; not in the reference.
    failure_reason: str | None = None


class DiagnosticResult(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    request_id: UUID
    pod_statuses: str
    events: str
    log_tails: str | None = None
    collected_at: datetime
    created_at: datetime


class DiagnosticResponse(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """``result`` is left out until there is one: the published SDK cannot parse a null."""

    request: DiagnosticRequest
    result: DiagnosticResult | None = None


class SubmitDiagnosticResult(msgspec.Struct, kw_only=True, frozen=True):
    pod_statuses: str
    events: str
    log_tails: str | None = None
    collected_at: datetime


# What the result's JSON strings hold (field names as the reference agent writes them).


class PodCondition(msgspec.Struct, kw_only=True, frozen=True):
    condition_type: str
    status: str
    reason: str | None = None
    message: str | None = None


class ContainerStatus(msgspec.Struct, kw_only=True, frozen=True):
    """``state`` is Running, Waiting, Terminated or Unknown; ``last_state_reason`` is why the
    previous instance ended (``OOMKilled``, ``Error``), when it did."""

    name: str
    ready: bool
    restart_count: int
    state: str
    state_reason: str | None = None
    state_message: str | None = None
    last_state_reason: str | None = None
    init: bool = False


class PodStatus(msgspec.Struct, kw_only=True, frozen=True):
    """``owner`` is the applied workload the pod belongs to, as ``Kind/name``."""

    name: str
    namespace: str
    phase: str
    conditions: list[PodCondition] = msgspec.field(default_factory=list)
    containers: list[ContainerStatus] = msgspec.field(default_factory=list)
    owner: str | None = None


class DiagnosticEvent(msgspec.Struct, kw_only=True, frozen=True):
    """``involved_object`` is the object's name (``Kind/name`` in ``involved_kind``'s absence
    in older results)."""

    event_type: str | None = None
    reason: str | None = None
    message: str | None = None
    involved_object: str
    involved_kind: str | None = None
    namespace: str | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    count: int | None = None


# "<pod>/<container>" (the current instance) or "<pod>/<container>/previous" → the log's last
# lines; a container whose log could not be read maps to "Error: <reason>".
LogTails = dict[str, str]
PREVIOUS_SUFFIX = "/previous"
