"""What an audit record says, how much of what a client sent it keeps, how often failures are
recorded, and how the trail is queried (D11). Pure data, no I/O."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from brokkr.broker.domain.access import Caller

ActorType = Literal["admin", "agent", "generator", "system"]
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# What a client controls (user agent, path, names, descriptions) is kept up to this many UTF-8
# bytes per value: enough to recognise it, too little for a flood of huge headers to fill the disk.
MAX_TEXT_BYTES = 256
_ELLIPSIS = "\u2026"
# Route segments (after /api/v1/) that name a resource type other than by dropping the plural.
_RESOURCE_TYPES = {"deployment-objects": "deployment_object", "auth": "pak", "admin": "system"}


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
    caller: Caller | None,
    *,
    action: str,
    resource_type: str,
    resource_id: UUID | None,
    details: dict[str, Any] | None = None,
) -> Entry:
    """A successful action performed by ``caller``, attributed to its real role and id; by the
    broker itself (``system``) when there is no caller."""
    if caller is None:
        return Entry(
            actor_type="system",
            actor_id=None,
            key_id=None,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            details=details,
        )
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


def denied(
    caller: Caller,
    *,
    code: str,
    method: str,
    route: str,
    path: str,
    resource_type: str,
    resource_id: UUID | None,
) -> Entry:
    """A write ``caller`` attempted and was refused (``code``), attributed to it (D11)."""
    entry = by(
        caller,
        action="access.denied",
        resource_type=resource_type,
        resource_id=resource_id,
        details={"code": code, "method": method, "route": route, "path": path},
    )
    return msgspec.structs.replace(entry, outcome="failure")


def resource_of(route: str, path_params: Mapping[str, object]) -> tuple[str, UUID | None]:
    """The resource a route acts on: ``/api/v1/stacks/{id}/labels`` → ("stack", its id)."""
    segments = [segment for segment in route.split("/") if segment]
    collection = segments[2] if len(segments) > 2 else "system"
    resource_type = _RESOURCE_TYPES.get(collection, collection.removesuffix("s").replace("-", "_"))
    resource_id = path_params.get("id")
    return resource_type, resource_id if isinstance(resource_id, UUID) else None


def clip(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` as one printable line of at most ``limit`` UTF-8 bytes (escaped controls; cut
    ones end in an ellipsis). PostgreSQL cannot store NUL, so it never reaches the database."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - len(_ELLIPSIS.encode())].decode(errors="ignore") + _ELLIPSIS


def _clipped_value(value: Any) -> Any:
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, dict):
        return {key: _clipped_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clipped_value(item) for item in value]
    return value


def clipped(entry: Entry) -> Entry:
    """The entry as stored: every free-text value cut to ``MAX_TEXT_BYTES``."""
    return msgspec.structs.replace(
        entry,
        resource_type=clip(entry.resource_type, 50),
        details=_clipped_value(entry.details),
        ip_address=None if entry.ip_address is None else clip(entry.ip_address, 64),
        user_agent=None if entry.user_agent is None else clip(entry.user_agent),
    )


class Throttle:
    """How often failures (401s, denied writes) are recorded: a token bucket per key (a source
    address, a key id) and one for all, each refilled at its rate per minute up to that rate.
    Only the most recently seen ``max_keys`` keys are kept, so memory stays bounded whatever
    the flood; a forgotten key starts afresh, and the shared bucket still bounds the total."""

    def __init__(self) -> None:
        self._keys: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._all: tuple[float, float] | None = None

    def allow(
        self,
        keys: list[tuple[str, str]],
        *,
        now: float,
        per_minute: int,
        per_minute_total: int,
        max_keys: int,
    ) -> bool:
        """Spend one token of every bucket involved, if each has one; else spend nothing."""
        shared = _refilled(self._all, now, per_minute_total)
        tokens = [_refilled(self._keys.get(key), now, per_minute) for key in keys]
        allowed = shared >= 1 and all(left >= 1 for left in tokens)
        spent = 1 if allowed else 0
        self._all = (shared - spent, now)
        for key, left in zip(keys, tokens, strict=True):
            self._keys[key] = (left - spent, now)
            self._keys.move_to_end(key)
        while len(self._keys) > max_keys:
            self._keys.popitem(last=False)
        return allowed

    def clear(self) -> None:
        self._keys.clear()
        self._all = None

    def __len__(self) -> int:
        return len(self._keys)


def _refilled(bucket: tuple[float, float] | None, now: float, per_minute: int) -> float:
    if bucket is None:
        return float(per_minute)
    left, then = bucket
    return min(float(per_minute), left + max(0.0, now - then) * per_minute / 60)


def failure_keys(entry: Entry) -> list[tuple[str, str]]:
    """What a failure is rate-limited by: its source address and the key id it presented, per
    action, so a caller's denied writes never silence the failed logins from its address."""
    keys = [(entry.action, f"source:{entry.ip_address or ''}")]
    if entry.key_id:
        keys.append((entry.action, f"key:{entry.key_id}"))
    return keys


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
