"""Broker fixtures: every test using ``api`` runs once on SQLite and once on PostgreSQL.

One app per backend per session, migrated by Alembic and bootstrapped like a real start; the
tables are emptied between tests because services really commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from litestar import Litestar

from brokkr.broker import db
from brokkr.broker.api.observability import Observability
from brokkr.broker.app import create_app
from brokkr.broker.db import tables
from brokkr.broker.domain import paks
from brokkr.broker.settings import Settings, load

ADMIN_PAK = paks.generate().plaintext


def settings_for(
    backend: str, data_dir: Path, postgres_url: str, **sections: dict[str, Any]
) -> Settings:
    environ = {"BROKKR__DATA_DIR": str(data_dir), "BROKKR__BROKER__ADMIN_PAK": ADMIN_PAK}
    if backend == "postgresql":
        environ["BROKKR__DATABASE__URL"] = postgres_url
    for section, values in sections.items():
        for key, value in values.items():
            environ[f"BROKKR__{section.upper()}__{key.upper()}"] = str(value)
    return load(environ=environ)


@dataclass
class Broker:
    backend: str
    app: Litestar
    settings: Settings

    @property
    def database(self) -> db.Database:
        database: db.Database = self.app.state.ctx.database
        return database

    async def reset(self) -> None:
        async with self.database.transaction() as tx:
            for table in (
                tables.webhook_deliveries,
                tables.webhook_subscriptions,
                tables.diagnostic_results,
                tables.diagnostic_requests,
                tables.deployment_health,
                tables.work_order_targets,
                tables.work_order_labels,
                tables.work_order_annotations,
                tables.work_orders,
                tables.work_order_log,
                tables.rendered_deployment_objects,
                tables.template_labels,
                tables.template_annotations,
                tables.stack_templates,
                tables.deletion_recipients,
                tables.agent_events,
                tables.agent_k8s_events,
                tables.agent_pod_logs,
                tables.agent_targets,
                tables.stack_labels,
                tables.stack_annotations,
                tables.deployment_objects,
                tables.stacks,
                tables.agent_labels,
                tables.agent_annotations,
                tables.agents,
                tables.audit_logs,
                tables.auth_revocations,
                tables.state_changes,
                tables.event_outbox,
                tables.job_schedule,
            ):
                await tx.execute(table.delete())
            await tx.execute(
                tables.generators.delete().where(tables.generators.c.name != "admin-generator")
            )
        self.app.state.authenticator.cache.forget(None)
        # Every test starts with the failure-audit rate limit unspent.
        self.app.state.ctx.audit_throttle.clear()
        # Rows were removed behind the services' back: no remembered target state holds.
        self.app.state.ctx.versions.changed(None)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> AsyncIterator[Broker]:
    backend: str = request.param
    settings = settings_for(backend, tmp_path_factory.mktemp(f"broker-{backend}"), postgres_url)
    app = create_app(settings)
    await app.state.runtime.start()
    yield Broker(backend=backend, app=app, settings=settings)
    await app.state.runtime.stop()


@pytest.fixture
async def api(broker: Broker) -> AsyncIterator[Api]:
    await broker.reset()
    transport = httpx.ASGITransport(app=Observability(broker.app, broker.app.state.metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
        yield Api(client=client, broker=broker)


def auth(pak: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {pak}"}


@dataclass
class Api:
    """An HTTP client on the in-process broker plus factories that go through the API."""

    client: httpx.AsyncClient
    broker: Broker
    admin_pak: str = ADMIN_PAK

    @property
    def admin(self) -> dict[str, str]:
        return auth(self.admin_pak)

    async def create_agent(
        self, name: str = "agent-1", cluster_name: str = "cluster-1"
    ) -> tuple[dict[str, Any], str]:
        response = await self.client.post(
            "/api/v1/agents", json={"name": name, "cluster_name": cluster_name}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["agent"], body["initial_pak"]

    async def create_generator(
        self, name: str = "ci-pipeline", description: str | None = None
    ) -> tuple[dict[str, Any], str]:
        response = await self.client.post(
            "/api/v1/generators",
            json={"name": name, "description": description},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["generator"], body["pak"]

    async def audit(self, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/api/v1/admin/audit-logs", params=params, headers=self.admin
        )
        assert response.status_code == 200, response.text
        logs: list[dict[str, Any]] = response.json()["logs"]
        return logs

    async def count(self, table: sa.Table, *conditions: sa.ColumnElement[bool]) -> int:
        async with self.broker.database.read() as tx:
            return int(
                (
                    await tx.execute(
                        sa.select(sa.func.count()).select_from(table).where(*conditions)
                    )
                ).scalar_one()
            )


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """D2: every failure is JSON with error, code and message (same text)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == body["message"] and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


@contextmanager
def limits(api: Api, **changed: Any) -> Iterator[None]:
    """Swap the limits in force, as a config reload does, for the duration of the block."""
    live = api.broker.app.state.ctx.settings
    before = live.current
    live.current = msgspec.structs.replace(
        before, limits=msgspec.structs.replace(before.limits, **changed)
    )
    try:
        yield
    finally:
        live.current = before
