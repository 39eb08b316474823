"""Explicit agent → stack targets."""

from __future__ import annotations

from uuid import UUID

import msgspec


class AgentTarget(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    agent_id: UUID
    stack_id: UUID


class NewAgentTarget(msgspec.Struct, kw_only=True, frozen=True):
    """``agent_id`` may be omitted; when sent it must equal the agent in the path (D8)."""

    stack_id: UUID
    agent_id: UUID | msgspec.UnsetType = msgspec.UNSET
