"""Partial updates (PATCH semantics): what an update body actually changes. Pure."""

from __future__ import annotations

from typing import Any

import msgspec


def changes(
    current: msgspec.Struct, update: msgspec.Struct, fields: tuple[str, ...]
) -> dict[str, Any]:
    """The ``fields`` the update sets to a value other than the current one."""
    sent = {field: getattr(update, field) for field in fields}
    return {
        field: value
        for field, value in sent.items()
        if value is not msgspec.UNSET and value != getattr(current, field)
    }
