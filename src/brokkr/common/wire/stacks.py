"""Stacks and their labels and annotations."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from brokkr.common.wire import types
from brokkr.common.wire.types import Description, Label, Name


class Stack(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    description: str | None
    generator_id: UUID


class NewStack(msgspec.Struct, kw_only=True, frozen=True):
    """``generator_id`` defaults to the calling generator (or, for admins, ``admin-generator``);
    a generator may only create stacks for itself."""

    name: Name
    description: Description | None = None
    generator_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "name", max_length=types.NAME_LENGTH)


class StackUpdate(msgspec.Struct, kw_only=True, frozen=True):
    """Partial update of ``name`` and ``description``. A full reference Stack body is accepted:
    ``id`` must equal the path, ``generator_id`` must be unchanged, timestamps are ignored."""

    id: UUID | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | None | msgspec.UnsetType = msgspec.UNSET
    generator_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "name", max_length=types.NAME_LENGTH)


class StackLabel(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    stack_id: UUID
    label: str


class NewStackLabel(msgspec.Struct, kw_only=True, frozen=True):
    """The object form; the reference form, a bare JSON string, is accepted too."""

    label: Label
    stack_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "label", max_length=types.LABEL_LENGTH)


class StackAnnotation(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    stack_id: UUID
    key: str
    value: str


class NewStackAnnotation(msgspec.Struct, kw_only=True, frozen=True):
    key: Label
    value: Label
    stack_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "key", "value", max_length=types.LABEL_LENGTH)
