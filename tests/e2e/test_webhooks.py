"""End to end webhook delivery with real ``brokkr serve`` processes and a real receiver:

- a broker killed with SIGKILL after committing events it could not deliver yet (its receiver
  was down) loses none: restarted on the same data dir, it delivers every one;
- two brokers on one PostgreSQL database deliver 1,000 events, each exactly once.

Events are caused through the API (work orders: each creation is a ``workorder.created``).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.waiting import eventually
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.conftest import BrokerProcess
from tests.fakes.webhook_receiver import WebhookReceiver

JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n"
SECRET = "a-signing-secret-of-some-length"
FAST = {
    "BROKKR__BROKER__WEBHOOK_DELIVERY_INTERVAL_SECONDS": "0.2",
    "BROKKR__BROKER__WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "BROKKR__BROKER__WEBHOOK_RETRY_MAX_SECONDS": "1",
}


class Admin:
    def __init__(self, broker: BrokerProcess) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"{broker.url}/api/v1",
            headers={"Authorization": f"Bearer {broker.admin_pak}"},
            timeout=30.0,
        )

    async def __aenter__(self) -> Admin:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.aclose()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def subscribe(self, url: str) -> str:
        body = {
            "name": "e2e",
            "url": url,
            "event_types": ["workorder.*"],
            "secret": SECRET,
            # Short claims: a killed broker's deliveries are sent again soon after a restart.
            "timeout_seconds": 2,
            "max_retries": 20,
        }
        subscription: dict[str, Any] = await self.post("/webhooks", body)
        return str(subscription["id"])

    async def work_orders(self, count: int) -> None:
        """``count`` committed ``workorder.created`` events."""
        agent = await self.post(
            "/agents", {"name": f"edge-{uuid.uuid4().hex[:8]}", "cluster_name": "e2e"}
        )
        body = {
            "work_type": "custom",
            "yaml_content": JOB,
            "target_agent_ids": [agent["agent"]["id"]],
        }
        for start in range(0, count, 25):
            await asyncio.gather(
                *(self.post("/work-orders", body) for _ in range(min(25, count - start)))
            )

    async def deliveries(
        self, subscription_id: str, status: str | None = None
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = await self.client.get(
                f"/webhooks/{subscription_id}/deliveries",
                params={"limit": 1000, "offset": offset, **({"status": status} if status else {})},
            )
            assert response.status_code == 200, response.text
            found += response.json()
            if "X-Next-Offset" not in response.headers:
                return found
            offset = int(response.headers["X-Next-Offset"])


def kill(broker: BrokerProcess) -> None:
    process, broker.process = broker.process, None
    assert process is not None
    process.kill()
    process.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as server:
        yield server


async def test_a_killed_broker_delivers_every_committed_event_after_restart(
    tmp_path: Path,
) -> None:
    events = 20
    receiver = WebhookReceiver()
    await receiver.start()
    await receiver.stop()  # its port is known; nobody listens yet
    broker = BrokerProcess(tmp_path, FAST)
    broker.start()
    try:
        async with Admin(broker) as admin:
            subscription_id = await admin.subscribe(receiver.url)
            await admin.work_orders(events)

            async def all_attempted() -> bool:
                found = await admin.deliveries(subscription_id)
                return len(found) == events and all(d["attempts"] >= 1 for d in found)

            await eventually(all_attempted, what="every delivery attempted")
        kill(broker)
        await receiver.start()
        broker.start()
        await eventually(
            lambda: len(receiver.requests) >= events, timeout=60, what="every event delivered"
        )
        async with Admin(broker) as admin:
            delivered = await eventually(
                lambda: _all(admin, subscription_id, "success", events),
                what="every delivery recorded",
            )
    finally:
        broker.stop()
        await receiver.stop()
    ids = Counter(request.envelope()["id"] for request in receiver.requests)
    assert len(ids) == events and set(ids.values()) == {1}
    assert ids.keys() == {d["event_id"] for d in delivered}
    assert all(request.signed_with(SECRET) for request in receiver.requests)


async def _all(
    admin: Admin, subscription_id: str, status: str, count: int
) -> list[dict[str, Any]] | None:
    found = await admin.deliveries(subscription_id, status)
    return found if len(found) == count else None


async def test_two_brokers_on_one_postgres_deliver_each_event_once(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    events = 1000
    database_url = await create_postgres_database()
    shared = {
        **FAST,
        "BROKKR__DATABASE__URL": database_url,
        # Replicas share the key that encrypts subscriptions (D10).
        "BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY": secrets.token_hex(32),
    }
    first = BrokerProcess(tmp_path / "one", shared)
    second = BrokerProcess(tmp_path / "two", shared)
    second.admin_pak = first.admin_pak
    try:
        first.start()
        second.start()
        async with Admin(first) as admin:
            subscription_id = await admin.subscribe(receiver.url)
            # Half the events committed through each broker.
            async with Admin(second) as other:
                await asyncio.gather(admin.work_orders(events // 2), other.work_orders(events // 2))
            await eventually(
                lambda: len(receiver.requests) >= events, timeout=60, what="1000 deliveries"
            )
            await eventually(
                lambda: _all(admin, subscription_id, "success", events),
                what="every delivery recorded",
            )
    finally:
        first.stop()
        second.stop()
        await drop_postgres_database(database_url)
    ids = Counter(request.envelope()["id"] for request in receiver.requests)
    assert len(ids) == events
    assert [event_id for event_id, seen in ids.items() if seen > 1] == []
