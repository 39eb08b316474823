"""The data layer turns database failures into domain errors the same way on both databases, for
every statement (``integrity.translate`` is the engine's error hook): a known unique constraint
is its resource's conflict, described from the conflicting row; any other integrity violation a
422 ``constraint_violation``; a NUL character PostgreSQL refuses in text a 400 ``invalid_text``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from brokkr.broker import db
from brokkr.broker.db import tables
from brokkr.broker.domain import errors
from tests.broker.conftest import Broker


async def test_a_unique_conflict_is_described_from_the_conflicting_row(broker: Broker) -> None:
    await broker.reset()
    now = datetime.now(UTC)
    with pytest.raises(errors.AgentLabelExists) as raised:
        async with broker.database.transaction() as tx:
            agent = await db.agents.insert(
                tx, name="a", cluster_name="c", status="INACTIVE", now=now
            )
            await db.agent_metadata.labels.add(tx, agent.id, "env:prod")
            await db.agent_metadata.labels.add(tx, agent.id, "env:prod")
    assert raised.value.details == {"label": "env:prod"}
    async with broker.database.read() as tx:
        assert await db.agents.list_live(tx, limit=1) == []


async def test_other_integrity_violations_are_a_constraint_violation(broker: Broker) -> None:
    with pytest.raises(errors.ConstraintViolation) as raised:
        async with broker.database.transaction() as tx:
            await db.agent_metadata.labels.add(tx, uuid.uuid4(), "orphan")
    assert raised.value.message == "the agent_label violates a database constraint"


async def test_nul_in_text_is_invalid_text_or_stored(broker: Broker) -> None:
    query = sa.select(tables.agents.c.id).where(tables.agents.c.name == "nul\u0000")
    if broker.backend == "sqlite":
        async with broker.database.read() as tx:
            assert (await tx.execute(query)).first() is None
        return
    with pytest.raises(errors.InvalidText):
        async with broker.database.read() as tx:
            await tx.execute(query)
