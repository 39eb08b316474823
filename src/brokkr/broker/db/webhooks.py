"""Webhook subscriptions (D10, D18): rows whose URL, auth header and secret are ciphertext.

This module stores and returns the encrypted bytes as they are; encrypting and decrypting is
the services' business (the key never reaches the data layer).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.common import wire

_s = tables.webhook_subscriptions


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """A stored subscription; the ``*_encrypted`` fields are ciphertext (``ctx.secrets``)."""

    id: UUID
    name: str
    url_encrypted: bytes
    auth_header_encrypted: bytes | None
    secret_encrypted: bytes | None
    event_types: list[str]
    filters: wire.WebhookFilters | None
    target_labels: list[str] | None
    enabled: bool
    max_retries: int
    timeout_seconds: int
    created_at: datetime
    updated_at: datetime
    created_by: str | None

    def response(self) -> wire.WebhookResponse:
        """What the API shows: never the URL, auth header or secret; no ``filters`` if none."""
        return wire.WebhookResponse(
            id=self.id,
            name=self.name,
            has_url=bool(self.url_encrypted),
            has_auth_header=self.auth_header_encrypted is not None,
            has_secret=self.secret_encrypted is not None,
            event_types=self.event_types,
            filters=msgspec.UNSET if self.filters is None else self.filters,
            target_labels=self.target_labels,
            enabled=self.enabled,
            max_retries=self.max_retries,
            timeout_seconds=self.timeout_seconds,
            created_at=self.created_at,
            updated_at=self.updated_at,
            created_by=self.created_by,
        )


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """What emission needs of an enabled subscription to decide whether an event reaches it."""

    id: UUID
    event_types: list[str]
    filters: wire.WebhookFilters | None
    target_labels: list[str] | None


_COLUMNS = [_s.c[field] for field in Subscription.__struct_fields__]
_CANDIDATE_COLUMNS = [_s.c[field] for field in Candidate.__struct_fields__]


def _filters(stored: Any) -> wire.WebhookFilters | None:
    return None if stored is None else msgspec.convert(stored, wire.WebhookFilters)


def _stored_filters(filters: wire.WebhookFilters | None) -> dict[str, Any] | None:
    return None if filters is None else msgspec.to_builtins(filters)


def _subscription(row: sa.Row[Any]) -> Subscription:
    values = dict(row._mapping)
    values["filters"] = _filters(values["filters"])
    return Subscription(**values)


async def insert(
    tx: Tx, values: dict[str, Any], *, created_by: str | None, now: datetime
) -> Subscription:
    """``values``: the columns of a new subscription (ciphertext for the secrets), with
    ``filters`` as a ``WebhookFilters`` or None."""
    row = (
        await tx.execute(
            _s.insert()
            .values(
                id=uuid.uuid4(),
                created_at=now,
                updated_at=now,
                created_by=created_by,
                enabled=True,
                **{**values, "filters": _stored_filters(values.get("filters"))},
            )
            .returning(*_COLUMNS)
        )
    ).one()
    return _subscription(row)


async def get(tx: Tx, subscription_id: UUID, *, for_update: bool = False) -> Subscription | None:
    query = sa.select(*_COLUMNS).where(_s.c.id == subscription_id)
    if for_update and tx.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    return None if row is None else _subscription(row)


async def list_all(tx: Tx) -> list[Subscription]:
    """Enabled and disabled, newest first."""
    query = sa.select(*_COLUMNS).order_by(_s.c.created_at.desc(), _s.c.id)
    return [_subscription(row) for row in (await tx.execute(query)).all()]


async def newest(tx: Tx) -> Subscription | None:
    query = sa.select(*_COLUMNS).order_by(_s.c.created_at.desc(), _s.c.id).limit(1)
    row = (await tx.execute(query)).first()
    return None if row is None else _subscription(row)


async def update(
    tx: Tx, subscription_id: UUID, changes: dict[str, Any], *, now: datetime
) -> Subscription | None:
    """Apply ``changes`` (column → value, None clears); None when the subscription is gone."""
    if "filters" in changes:
        changes = {**changes, "filters": _stored_filters(changes["filters"])}
    row = (
        await tx.execute(
            _s.update()
            .where(_s.c.id == subscription_id)
            .values(updated_at=now, **changes)
            .returning(*_COLUMNS)
        )
    ).first()
    return None if row is None else _subscription(row)


async def delete(tx: Tx, subscription_id: UUID) -> bool:
    """Hard delete; its deliveries go with it (foreign key cascade)."""
    result = await tx.execute(_s.delete().where(_s.c.id == subscription_id))
    return bool(result.rowcount)


async def enabled(tx: Tx) -> list[Candidate]:
    """Every enabled subscription, as emission matches them."""
    query = sa.select(*_CANDIDATE_COLUMNS).where(_s.c.enabled.is_(True))
    return [
        Candidate(
            id=row.id,
            event_types=row.event_types,
            filters=_filters(row.filters),
            target_labels=row.target_labels,
        )
        for row in (await tx.execute(query)).all()
    ]
