"""GET /api/v1/admin/ws/connections: admins only (agents and generators 403, no PAK 401); this
broker's connected agents with their frame counts, and the live subscribers (also a gauge)."""

from __future__ import annotations

from tests.broker.channel.conftest import Fleet, acked, eventually, send
from tests.broker.conftest import assert_error, auth

PATH = "/api/v1/admin/ws/connections"


async def test_admin_sees_the_connected_agents(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1")
    async with fleet.dial(agent) as ws:
        await ws.send(
            send("heartbeat", {"agent_id": agent.id, "sent_at": "2025-01-01T00:00:00Z"}, ref="1")
        )
        await acked(ws, "1")
        response = await fleet.api.client.get(PATH, headers=fleet.api.admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["connected_agents"] == 1 and body["live_subscribers"] == 0
        [connection] = body["connections"]
        assert connection["agent_id"] == agent.id and connection["connected_since"]
        assert (connection["messages_in"], connection["messages_out"]) == (1, 1)
    metrics = fleet.api.broker.app.state.metrics
    assert metrics.registry.get_sample_value("brokkr_ws_live_subscribers") == 0

    async def gone() -> bool:
        response = await fleet.api.client.get(PATH, headers=fleet.api.admin)
        return bool(response.json()["connected_agents"] == 0)

    await eventually(gone)
    connected = metrics.registry.get_sample_value("brokkr_ws_connected_agents", {"worker": "0"})
    assert connected == 0


async def test_only_admins_list_connections(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1")
    _, generator_pak = await fleet.api.create_generator("ci")
    for pak in (agent.pak, generator_pak):
        assert_error(await fleet.api.client.get(PATH, headers=auth(pak)), 403, "admin_required")
    assert_error(await fleet.api.client.get(PATH), 401, "unauthorized")
