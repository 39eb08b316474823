"""Configuration reload (``POST /admin/config/reload``, D20)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class ConfigChangeInfo(msgspec.Struct, kw_only=True, frozen=True):
    key: str
    old_value: str
    new_value: str


class ConfigReloadResponse(msgspec.Struct, kw_only=True, frozen=True):
    reloaded_at: datetime
    # The settings now in force that differ from before; those that need a restart are named
    # in ``message`` and not applied.
    changes: list[ConfigChangeInfo]
    success: bool
    message: str | None = None
