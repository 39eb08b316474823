"""Opening the agent channel: agent PAKs of active agents only, refused before the handshake
with a D2 answer (401 missing/unknown PAK, 403 admin, generator or inactive agent, 503 over
the connection limit, 426 plain GET); a second connection of an agent replaces the first."""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from brokkr.broker.domain import paks
from tests.broker.channel.conftest import PATH, Fleet, dial, next_frame, refused, send
from tests.broker.conftest import limits


async def test_active_agent_connects_and_is_answered(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1")
    async with fleet.dial(agent) as ws:
        body = {"agent_id": agent.id, "sent_at": "2025-01-01T00:00:00Z"}
        await ws.send(send("heartbeat", body, ref="h1"))
        assert await next_frame(ws) == {"type": "ack", "body": {"ref": "h1", "ok": True}}


@pytest.mark.parametrize("who", ["missing", "malformed", "unknown"])
async def test_without_a_valid_pak_the_upgrade_is_401(fleet: Fleet, who: str) -> None:
    pak = {"missing": None, "malformed": "not-a-pak", "unknown": paks.generate().plaintext}[who]
    status, body = await refused(fleet.base, pak)
    assert status == 401
    assert body["code"] == "unauthorized" and body["message"] == body["error"]
    failures = await fleet.api.audit(action="auth.failed")
    assert failures and failures[0]["details"]["path"] == PATH


async def test_admin_and_generator_paks_are_403(fleet: Fleet) -> None:
    _, generator_pak = await fleet.api.create_generator("ci")
    for pak in (fleet.api.admin_pak, generator_pak):
        status, body = await refused(fleet.base, pak)
        assert (status, body["code"]) == (403, "agent_pak_required")


async def test_inactive_agent_is_403(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1", active=False)
    status, body = await refused(fleet.base, agent.pak)
    assert (status, body["code"]) == (403, "agent_not_active")


async def test_connections_beyond_the_limit_are_503(fleet: Fleet) -> None:
    first, second = await fleet.agent("edge-1"), await fleet.agent("edge-2")
    with limits(fleet.api, ws_max_agent_connections=1):
        async with fleet.dial(first):
            status, body = await refused(fleet.base, second.pak)
    assert (status, body["code"]) == (503, "agent_channel_full")


async def test_plain_get_is_426(fleet: Fleet) -> None:
    url = fleet.base.replace("ws://", "http://") + PATH
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 426
    assert response.json()["code"] == "upgrade_required"


async def test_a_second_connection_replaces_the_first(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1")
    async with dial(fleet.base, agent.pak) as old, dial(fleet.base, agent.pak) as new:
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(old)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        body = {"agent_id": agent.id, "sent_at": "2025-01-01T00:00:00Z"}
        await new.send(send("heartbeat", body, ref="h"))
        assert (await next_frame(new))["body"] == {"ref": "h", "ok": True}
