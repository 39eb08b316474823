"""Generators: the automation identities (CI pipelines) that own stacks."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from brokkr.common.wire import types
from brokkr.common.wire.types import Name, Text


class Generator(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    description: str | None
    last_active_at: datetime | None
    is_active: bool


class NewGenerator(msgspec.Struct, kw_only=True, frozen=True):
    name: Name
    description: Text | None = None

    def __post_init__(self) -> None:
        types.normalize(self, "name", max_length=types.NAME_LENGTH)


class GeneratorUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """Partial update; a full reference ``Generator`` body is accepted too.

    Only ``name``, ``description`` and (admins only) ``is_active`` are written; ``created_at``,
    ``updated_at``, ``deleted_at`` and ``last_active_at`` are ignored (D8).
    """

    id: UUID | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Text | None | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "name", max_length=types.NAME_LENGTH)


class CreateGeneratorResponse(msgspec.Struct, kw_only=True, frozen=True):
    generator: Generator
    pak: str
