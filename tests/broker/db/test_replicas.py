"""Several brokers on one database (D7, D21).

Covers what one broker remembers being corrected by another's writes: a target-state ETag that
broker B answered 304 to stops matching within a second of a change made through broker A, and
a PAK rotated through A stops working on B (which had it cached) within a second. Runs on
PostgreSQL (LISTEN/NOTIFY) and on one shared SQLite file (polling).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from brokkr.broker.app import create_app
from brokkr.broker.domain import paks
from brokkr.broker.settings import load
from tests.broker.conftest import auth
from tests.conftest import create_postgres_database, drop_postgres_database

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


@asynccontextmanager
async def two_brokers(
    backend: str, tmp_path: Path, admin_pak: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    database_url = await create_postgres_database() if backend == "postgresql" else ""
    apps: list[Litestar] = []
    for name in ("a", "b"):
        environ = {"BROKKR__DATA_DIR": str(tmp_path / name), "BROKKR__BROKER__ADMIN_PAK": admin_pak}
        environ["BROKKR__DATABASE__URL"] = database_url or f"sqlite:///{tmp_path / 'shared.db'}"
        apps.append(create_app(load(environ=environ)))
    try:
        for app in apps:
            await app.state.runtime.start()
        async with (
            # Litestar's ASGI signature uses TypedDict scopes, narrower than httpx's mappings.
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://a") as a,  # type: ignore[arg-type]
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url="http://b") as b,  # type: ignore[arg-type]
        ):
            yield a, b
    finally:
        for app in apps:
            await app.state.runtime.stop()
        if database_url:
            await drop_postgres_database(database_url)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def post(client: httpx.AsyncClient, path: str, body: Any, pak: str) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=auth(pak))
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_change_on_one_broker_ends_304s_on_another(backend: str, tmp_path: Path) -> None:
    admin = paks.generate().plaintext
    async with two_brokers(backend, tmp_path, admin) as (a, b):
        created = await post(a, "/api/v1/agents", {"name": "edge", "cluster_name": "eu"}, admin)
        agent_id, agent_pak = created["agent"]["id"], created["initial_pak"]
        stack = await post(a, "/api/v1/stacks", {"name": "web"}, admin)
        await post(
            a,
            f"/api/v1/stacks/{stack['id']}/deployment-objects",
            {"yaml_content": CONFIGMAP.format(name="one")},
            admin,
        )
        await post(a, f"/api/v1/agents/{agent_id}/targets", {"stack_id": stack["id"]}, admin)
        path = f"/api/v1/agents/{agent_id}/target-state"
        first = await b.get(path, headers=auth(agent_pak))
        etag = first.headers["etag"]
        cached = await b.get(path, headers={**auth(agent_pak), "If-None-Match": etag})
        assert cached.status_code == 304
        await post(
            a,
            f"/api/v1/stacks/{stack['id']}/deployment-objects",
            {"yaml_content": CONFIGMAP.format(name="two")},
            admin,
        )

        async def changed() -> bool:
            response = await b.get(path, headers={**auth(agent_pak), "If-None-Match": etag})
            return response.status_code == 200

        assert await eventually(changed)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_pak_rotated_on_one_broker_stops_working_on_another(
    backend: str, tmp_path: Path
) -> None:
    admin = paks.generate().plaintext
    async with two_brokers(backend, tmp_path, admin) as (a, b):
        created = await post(a, "/api/v1/agents", {"name": "edge", "cluster_name": "eu"}, admin)
        agent_id, old_pak = created["agent"]["id"], created["initial_pak"]
        path = f"/api/v1/agents/{agent_id}"
        assert (await b.get(path, headers=auth(old_pak))).status_code == 200  # cached on b
        rotated = await post(a, f"{path}/rotate-pak", None, old_pak)

        async def revoked() -> bool:
            return (await b.get(path, headers=auth(old_pak))).status_code == 401

        assert await eventually(revoked)
        assert (await b.get(path, headers=auth(rotated["pak"]))).status_code == 200
