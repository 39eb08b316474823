"""The agent channel (``/internal/ws/agent``) and the live stack stream: JSON text frames
``{"type": <snake_case tag>, "body": {...}}`` as the reference agent sends them.

Two additions, both invisible to the reference agent and broker: an uplink frame may carry
``"ref"`` (an opaque string of at most 64 characters), and the broker then answers it with an
``ack`` frame once the frame's effect is committed (``ok``) or refused (``ok`` false, ``error``
saying why). A frame without ``ref`` is never answered. Only an acknowledged deploy event counts
as sent; the agent sends an unacknowledged one again over REST.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

# Broker -> agent hints (REST stays authoritative: an agent re-reads what they point at).
WORK_ORDER = "work_order"
TARGET_CHANGED = "target_changed"
STACK_CHANGED = "stack_changed"
ACK = "ack"
# Agent -> broker.
HEARTBEAT = "heartbeat"
AGENT_EVENT = "agent_event"
AGENT_HEALTH = "agent_health"
K8S_EVENT = "k8s_event"
POD_LOG_LINE = "pod_log_line"
LOG_GAP = "log_gap"

DOWNLINK_TYPES = frozenset({WORK_ORDER, TARGET_CHANGED, STACK_CHANGED, ACK})
UPLINK_TYPES = frozenset({HEARTBEAT, AGENT_EVENT, AGENT_HEALTH, K8S_EVENT, POD_LOG_LINE, LOG_GAP})
TELEMETRY_TYPES = frozenset({K8S_EVENT, POD_LOG_LINE, LOG_GAP})

Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
GapReason = Literal["rate_limit", "buffer_full", "disconnected"]


class Envelope(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One frame, its body still undecoded (decoded by ``type`` once the type is known)."""

    type: str
    body: msgspec.Raw
    ref: Ref | None = None


class Heartbeat(msgspec.Struct, kw_only=True, frozen=True):
    agent_id: UUID
    sent_at: datetime


class AgentEventBody(msgspec.Struct, kw_only=True, frozen=True):
    """The reference's full AgentEvent shape; the broker reads only what the REST report has
    (the id, timestamps and ``deleted_at`` are the broker's own)."""

    id: UUID = UUID(int=0)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    agent_id: UUID
    deployment_object_id: UUID
    event_type: str = "DEPLOY"
    status: str
    message: str | None = None


class AgentHealthBody(msgspec.Struct, kw_only=True, frozen=True):
    """The reference's DeploymentHealth shape; ``summary`` is a HealthSummary as a JSON string."""

    id: UUID = UUID(int=0)
    agent_id: UUID
    deployment_object_id: UUID
    status: str
    summary: str | None = None
    checked_at: datetime
    created_at: datetime | None = None
    updated_at: datetime | None = None


class InvolvedObject(msgspec.Struct, kw_only=True, frozen=True):
    api_version: str
    kind: str
    namespace: str | None = None
    name: str
    uid: str


class K8sEventBody(msgspec.Struct, kw_only=True, frozen=True):
    agent_id: UUID
    stack_id: UUID
    observed_at: datetime
    reason: str = ""
    message: str = ""
    event_type: str = "Normal"
    source: str | None = None
    involved_object: InvolvedObject


class PodLogLineBody(msgspec.Struct, kw_only=True, frozen=True):
    """``ts``: when the container wrote the line (the reference sent its receive time)."""

    agent_id: UUID
    stack_id: UUID
    namespace: str
    pod: str
    container: str
    ts: datetime
    line: str


class LogGapBody(msgspec.Struct, kw_only=True, frozen=True):
    """``dropped_count`` frames were lost since ``since_ts`` (a true count, unlike the
    reference's constant 1)."""

    agent_id: UUID
    stack_id: UUID
    since_ts: datetime
    dropped_count: Annotated[int, msgspec.Meta(ge=0)]
    reason: GapReason


class TargetChangedBody(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    stack_id: UUID


class AckBody(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    ref: Ref
    ok: bool
    error: str | None = None


def frame(type_: str, body: Any, *, ref: str | None = None) -> bytes:
    """The JSON text of one frame (``body`` a Struct or anything msgspec encodes)."""
    raw = msgspec.Raw(msgspec.json.encode(body))
    return msgspec.json.encode(Envelope(type=type_, body=raw, ref=ref))
