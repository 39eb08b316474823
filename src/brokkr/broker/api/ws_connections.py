"""/admin/ws/connections: the agents on this broker's channel and its live-stream subscribers."""

from __future__ import annotations

from litestar import Router, get

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire


@get(
    "/admin/ws/connections",
    operation_id="list_ws_connections",
    summary="Agent channel connections and live streams of this broker",
    description=(
        "A snapshot of THIS broker process (each replica answers for its own connections): the "
        "agents connected to `/internal/ws/agent`, oldest connection first, with the frames "
        "each sent and was sent, and the live-stream subscribers. Also sets the gauge "
        "`brokkr_ws_live_subscribers`."
    ),
    security=security.ADMIN,
    responses=responses.errors(),
    tags=["admin"],
)
async def list_ws_connections(ctx: ContextDep, caller: CallerDep) -> wire.WsConnectionsResponse:
    return services.agent_channel.connections(ctx, caller=caller)


router = Router(path="/", route_handlers=[list_ws_connections])
