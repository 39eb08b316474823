"""Agent events: an agent's report of applying one deployment object."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from brokkr.common.wire.types import EventMessage

EventStatus = Literal["SUCCESS", "FAILURE"]
EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"\S")]


class AgentEvent(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    agent_id: UUID
    deployment_object_id: UUID
    event_type: str
    status: str
    message: str | None


class NewAgentEvent(msgspec.Struct, kw_only=True, frozen=True):
    """``agent_id`` may be omitted; when sent it must equal the reporting agent (D8)."""

    deployment_object_id: UUID
    status: EventStatus
    event_type: EventType = "DEPLOY"
    message: EventMessage | None = None
    agent_id: UUID | msgspec.UnsetType = msgspec.UNSET
