"""What an audit record says and how the trail is queried (D11). Pure data, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from brokkr.broker.domain.access import Caller

ActorType = Literal["admin", "agent", "generator", "system"]
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    actor_type: ActorType
    actor_id: UUID | None
    key_id: str | None
    action: str
    resource_type: str
    resource_id: UUID | None
    outcome: Literal["success", "failure"] = "success"
    details: dict[str, Any] | None = None
    ip_address: str | None = None
    user_agent: str | None = None


class Query(msgspec.Struct, frozen=True, kw_only=True):
    actor_type: str | None = None
    actor_id: UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def by(
    caller: Caller,
    *,
    action: str,
    resource_type: str,
    resource_id: UUID | None,
    details: dict[str, Any] | None = None,
) -> Entry:
    """A successful action performed by ``caller``, attributed to its real role and id."""
    return Entry(
        actor_type=caller.role.value,
        actor_id=caller.id,
        key_id=caller.identity.key_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        details=details,
        ip_address=caller.ip_address,
        user_agent=caller.user_agent,
    )


def as_utc(moment: datetime | None) -> datetime | None:
    """Query bounds without an offset are taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def action_pattern(action: str) -> tuple[str, bool]:
    """``agent.*`` means "starts with ``agent.``": returns (text, is_prefix)."""
    if action.endswith("*"):
        return action[:-1], True
    return action, False
