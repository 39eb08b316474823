"""Stack telemetry rows written straight into a served broker's database (SQLite file or
PostgreSQL), as another broker's batch writer would: what history reads and live streams of
the served broker then show, without an agent on the channel."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from brokkr.broker import db
from brokkr.broker.db import tables


def database_url(data_dir: Path, postgres_url: str | None = None) -> str:
    if postgres_url is not None:
        return postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"sqlite+aiosqlite:///{(data_dir / 'brokkr.db').resolve()}"


async def insert_lines(
    url: str, stack_id: uuid.UUID, *lines: str, age: timedelta = timedelta(0), pod: str = "web-1"
) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "agent_id": uuid.uuid4(),
            "stack_id": stack_id,
            "namespace": "shop",
            "pod": pod,
            "container": "app",
            "ts": now,
            "line": text,
            # Strictly increasing: the order they were given in is the order they were written.
            "created_at": now - age + timedelta(microseconds=index),
        }
        for index, text in enumerate(lines)
    ]
    await _insert(url, tables.agent_pod_logs, rows)


async def insert_event(url: str, stack_id: uuid.UUID, *, reason: str, message: str) -> None:
    now = datetime.now(UTC)
    row = {
        "id": uuid.uuid4(),
        "agent_id": uuid.uuid4(),
        "stack_id": stack_id,
        "observed_at": now,
        "reason": reason,
        "message": message,
        "event_type": "Warning",
        "source": "kubelet",
        "involved_object": {
            "api_version": "v1",
            "kind": "Pod",
            "namespace": "shop",
            "name": "web-1",
            "uid": "u-1",
        },
        "created_at": now,
    }
    await _insert(url, tables.agent_k8s_events, [row])


async def _insert(url: str, table: sa.Table, rows: list[dict[str, object]]) -> None:
    database = db.create(url, pool_size=1)
    try:
        async with database.transaction() as tx:
            await tx.execute(table.insert(), rows)
    finally:
        await database.dispose()
