"""Deployment health: what each agent finds running for a deployment object it applied.

Request entries keep ``status`` a plain string: the broker checks every entry itself so a bad
batch is answered with each invalid entry named, not just the first one the decoder meets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

HealthStatus = Literal["healthy", "degraded", "failing", "unknown"]
HEALTH_STATUSES: tuple[HealthStatus, ...] = ("healthy", "degraded", "failing", "unknown")


class ResourceHealth(msgspec.Struct, kw_only=True, frozen=True):
    """One Kubernetes object's part in the assessment (a workload, or one of its pods)."""

    kind: str
    name: str
    namespace: str
    ready: bool
    message: str | None = None


class HealthSummary(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """``conditions`` names what is wrong (``ImagePullBackOff``, ``OOMKilled``, ...), without
    repeats; ``resources`` is left out when there is no detail."""

    pods_ready: int
    pods_total: int
    conditions: list[str] = msgspec.field(default_factory=list)
    resources: list[ResourceHealth] | None = None


class DeploymentObjectHealthUpdate(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    status: str
    checked_at: datetime
    summary: HealthSummary | None = None


class HealthStatusUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """``PATCH /agents/{id}/health-status``: the reporting agent's latest health per object."""

    deployment_objects: list[DeploymentObjectHealthUpdate]


class DeploymentHealth(msgspec.Struct, kw_only=True, frozen=True):
    """One agent's latest report for one deployment object. ``summary`` is the HealthSummary
    encoded as a JSON string (as the reference sends it). A report older than the broker's
    staleness bound reads as ``unknown`` with ``stale`` set; ``reported_status`` keeps what
    the agent said."""

    id: UUID
    agent_id: UUID
    deployment_object_id: UUID
    status: str
    summary: str | None = None
    checked_at: datetime
    created_at: datetime
    updated_at: datetime
    stale: bool = False
    reported_status: str | None = None


class DeploymentHealthResponse(msgspec.Struct, kw_only=True, frozen=True):
    """``overall_status``: failing > degraded > healthy > unknown over the records."""

    deployment_object_id: UUID
    health_records: list[DeploymentHealth]
    overall_status: str


class DeploymentObjectHealthSummary(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    status: str
    healthy_agents: int
    degraded_agents: int
    failing_agents: int


class StackHealthResponse(msgspec.Struct, kw_only=True, frozen=True):
    stack_id: UUID
    overall_status: str
    deployment_objects: list[DeploymentObjectHealthSummary]


def decode_summary(text: str | None) -> HealthSummary | None:
    """The HealthSummary inside a DeploymentHealth's ``summary`` string; None if absent or
    unreadable (a record written by another implementation)."""
    if not text:
        return None
    try:
        return msgspec.json.decode(text, type=HealthSummary)
    except msgspec.DecodeError:
        return None
