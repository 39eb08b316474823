"""SQLite's single writer (issue #9, finding 1): concurrent writes queue inside the broker.

Covers 20 uploads of ~300 KiB deployment objects sent at once to a broker on SQLite whose busy
timeout (``database.connect_timeout_seconds``) is far shorter than the queue they form: every
one answers 201 (none fails with 500 "database is locked") and all 20 are stored.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import sqlalchemy as sa

from brokkr.broker.api.observability import Observability
from brokkr.broker.app import create_app
from brokkr.broker.db.tables import deployment_objects as objects
from tests.broker.conftest import ADMIN_PAK, auth, settings_for

UPLOADS = 20


def manifest(index: int) -> str:
    padding = "x" * 1000
    data = "\n".join(f"  key{line}: {padding}" for line in range(300))
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{index}\ndata:\n{data}\n"


async def test_concurrent_uploads_all_succeed_on_sqlite(tmp_path: Path) -> None:
    settings = settings_for(
        "sqlite", tmp_path, "", database={"connect_timeout_seconds": 0.05, "pool_size": UPLOADS}
    )
    app = create_app(settings)
    await app.state.runtime.start()
    transport = httpx.ASGITransport(app=Observability(app, app.state.metrics))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://b.test", timeout=120
        ) as client:
            created = await client.post(
                "/api/v1/generators", json={"name": "ci"}, headers=auth(ADMIN_PAK)
            )
            generator = auth(created.json()["pak"])
            stack = await client.post("/api/v1/stacks", json={"name": "web"}, headers=generator)
            path = f"/api/v1/stacks/{stack.json()['id']}/deployment-objects"

            responses = await asyncio.gather(
                *(
                    client.post(path, json={"yaml_content": manifest(i)}, headers=generator)
                    for i in range(UPLOADS)
                )
            )
            assert [r.status_code for r in responses] == [201] * UPLOADS, [
                r.text[:200] for r in responses if r.status_code != 201
            ]
        async with app.state.ctx.database.read() as conn:
            stored = await conn.execute(sa.select(sa.func.count()).select_from(objects))
            assert stored.scalar_one() == UPLOADS
    finally:
        await app.state.runtime.stop()
