"""Client fixtures: the client against a real ``brokkr serve`` subprocess, never in-process.

``live_broker`` starts ONE broker per backend (SQLite, PostgreSQL) for the whole session, on a
free port of 127.0.0.1 with a fresh data dir (and, for PostgreSQL, a fresh database), an admin
PAK seeded through ``BROKKR__BROKER__ADMIN_PAK`` and warning-level logs; it waits for
``/readyz`` and at the end sends SIGTERM, then kills if needed (``tests.cli.serving``). Tests
share the broker, so each creates its own uniquely named resources (see ``unique``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Unpack

import pytest

from brokkr.broker.domain import paks
from brokkr.client import AsyncBrokkrClient, Retry
from brokkr.client.client import ClientOptions
from tests.cli.serving import running_broker
from tests.client import telemetry_rows
from tests.conftest import create_postgres_database, drop_postgres_database

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n"


@dataclass(frozen=True)
class LiveBroker:
    backend: str
    url: str
    admin_pak: str
    # The broker's database (SQLAlchemy URL), to write what an agent would have streamed.
    database_url: str = ""

    @asynccontextmanager
    async def client(
        self, pak: str | None, **options: Unpack[ClientOptions]
    ) -> AsyncIterator[AsyncBrokkrClient]:
        """A client on this broker with ``pak``; closed on exit."""
        options.setdefault("retry", Retry(attempts=2, backoff=0.01))
        async with AsyncBrokkrClient(self.url, pak, **options) as client:
            yield client


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on the same broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def manifest(name: str, value: str = "1") -> str:
    return CONFIGMAP.format(name=name, value=value)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def live_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveBroker]:
    backend: str = request.param
    workdir = tmp_path_factory.mktemp(f"client-{backend}")
    admin_pak = paks.generate().plaintext
    extra_env = {"BROKKR__BROKER__ADMIN_PAK": admin_pak, "BROKKR__LOG__LEVEL": "warning"}
    database_url = None
    if backend == "postgresql":
        database_url = await create_postgres_database()
        extra_env["BROKKR__DATABASE__URL"] = database_url
    try:
        with running_broker(workdir / "data", workdir, extra_env=extra_env) as server:
            yield LiveBroker(
                backend=backend,
                url=server.url,
                admin_pak=admin_pak,
                database_url=telemetry_rows.database_url(workdir / "data", database_url),
            )
    finally:
        if database_url is not None:
            await drop_postgres_database(database_url)


@pytest.fixture
async def admin(live_broker: LiveBroker) -> AsyncIterator[AsyncBrokkrClient]:
    async with live_broker.client(live_broker.admin_pak) as client:
        yield client
