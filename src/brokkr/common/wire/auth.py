"""Who a PAK belongs to (``POST /auth/pak``)."""

from __future__ import annotations

from uuid import UUID

import msgspec


class AuthResponse(msgspec.Struct, kw_only=True, frozen=True):
    admin: bool
    agent: UUID | None
    generator: UUID | None
