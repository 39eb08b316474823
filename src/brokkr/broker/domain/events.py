"""Events that leave the broker (webhooks, D18): what happened, as a type name and its data.
Pure data, no I/O."""

from __future__ import annotations

from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True):
    event_type: str
    data: dict[str, Any]
