"""The one error body every failing response carries (D2)."""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, kw_only=True, frozen=True):
    """``error`` is the documented field; ``code``/``message``/``details`` are what SDKs parse."""

    error: str
    code: str
    message: str
    details: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
