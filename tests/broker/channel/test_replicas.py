"""Two brokers on one PostgreSQL database (D21): a change committed through one reaches an agent
connected to the other, through the hint notices; each broker lists only its own connections."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from brokkr.broker.app import create_app
from tests.broker.channel.conftest import Fleet, dial, next_frame, serving
from tests.broker.conftest import Broker

pytestmark = pytest.mark.parametrize("broker", ["postgresql"], indirect=True)


@pytest.fixture
async def second_broker(broker: Broker) -> AsyncIterator[str]:
    """Another broker process's app on the same database (and data dir: the same webhook key)."""
    app = create_app(broker.settings)
    await app.state.runtime.start()
    try:
        async with serving(app) as url:
            yield url
    finally:
        await app.state.runtime.stop()


async def test_a_change_through_one_broker_reaches_an_agent_on_the_other(
    fleet: Fleet, second_broker: str
) -> None:
    agent = await fleet.agent("edge-1")
    stack_id = await fleet.stack("web")
    await fleet.target(agent, stack_id)
    async with dial(second_broker, agent.pak) as ws:
        await fleet.post_object(stack_id)
        frame = await next_frame(ws)
        assert (frame["type"], frame["body"]["id"]) == ("stack_changed", stack_id)
        listed = await fleet.api.client.get("/api/v1/admin/ws/connections", headers=fleet.api.admin)
        assert listed.json()["connected_agents"] == 0
