"""Agents, their labels and annotations (reference schemas Agent, NewAgent, AgentLabel, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from brokkr.common.wire import types
from brokkr.common.wire.types import Label, Name

AgentStatus = Literal["ACTIVE", "INACTIVE"]


class Agent(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    cluster_name: str
    last_heartbeat: datetime | None
    status: str


class NewAgent(msgspec.Struct, kw_only=True, frozen=True):
    name: Name
    cluster_name: Name

    def __post_init__(self) -> None:
        types.normalize(self, "name", "cluster_name", max_length=types.NAME_LENGTH)


class AgentUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """Partial update. Only admins may change ``status`` (D8); other fields are ignored."""

    id: UUID | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    cluster_name: Name | msgspec.UnsetType = msgspec.UNSET
    status: AgentStatus | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "name", "cluster_name", max_length=types.NAME_LENGTH)


class CreateAgentResponse(msgspec.Struct, kw_only=True, frozen=True):
    agent: Agent
    initial_pak: str


class RotateAgentPakResponse(msgspec.Struct, kw_only=True, frozen=True):
    agent: Agent
    pak: str


class AgentLabel(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    label: str


class NewAgentLabel(msgspec.Struct, kw_only=True, frozen=True):
    """``agent_id`` may be omitted; when sent it must equal the agent in the path (D8)."""

    label: Label
    agent_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "label", max_length=types.LABEL_LENGTH)


class AgentAnnotation(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    key: str
    value: str


class NewAgentAnnotation(msgspec.Struct, kw_only=True, frozen=True):
    """``agent_id`` may be omitted; when sent it must equal the agent in the path (D8)."""

    key: Label
    value: Label
    agent_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "key", "value", max_length=types.LABEL_LENGTH)
