"""What /metrics tells of the database: how long statements take, by kind (a bounded label:
select, insert, update, delete, other), and how busy the connection pools are (read when
scraped: counters SQLAlchemy and asyncpg keep in memory, no I/O)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from brokkr.broker.db.engine import Database

QUERY_TYPES = ("select", "insert", "update", "delete", "other")
_STARTED = "brokkr_statement_started"


@dataclass(frozen=True)
class PoolUsage:
    # "main": SQLAlchemy's pool, every transaction; "fast": PostgreSQL's hot-path reads.
    pool: str
    size: int
    open: int
    checked_out: int


def query_type(statement: str) -> str:
    word = statement.lstrip()[:6].lower()
    return word if word in QUERY_TYPES else "other"


def watch_queries(database: Database, observe: Callable[[str, float], None]) -> None:
    """Tell ``observe`` (kind, seconds) of every statement the database runs, once it returned
    (a failed statement is not timed)."""
    database.observe_query = observe
    engine = database.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: sa.Connection, *_args: Any) -> None:
        conn.info[_STARTED] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            observe(query_type(statement), time.perf_counter() - started)


def pool_usage(database: Database) -> list[PoolUsage]:
    usage: list[PoolUsage] = []
    pool = database.engine.pool
    if isinstance(pool, QueuePool):
        usage.append(
            PoolUsage(
                pool="main",
                size=pool.size(),
                open=pool.checkedin() + pool.checkedout(),
                checked_out=pool.checkedout(),
            )
        )
    fast = database.fast_pool
    if fast is not None:
        usage.append(
            PoolUsage(
                pool="fast",
                size=fast.get_max_size(),
                open=fast.get_size(),
                checked_out=fast.get_size() - fast.get_idle_size(),
            )
        )
    return usage
