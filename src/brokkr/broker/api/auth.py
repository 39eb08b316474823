"""/auth/pak: who does this PAK belong to?"""

from __future__ import annotations

from litestar import Router, post

from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep
from brokkr.broker.domain.access import Role
from brokkr.common import wire


@post(
    "/auth/pak",
    operation_id="verify_pak",
    summary="Verify a PAK",
    description=(
        "Returns the role of the PAK in the Authorization header. Any request body is ignored."
    ),
    status_code=200,
    security=security.ANY,
    responses=responses.errors(),
    tags=["auth"],
)
async def verify_pak(caller: CallerDep) -> wire.AuthResponse:
    return wire.AuthResponse(
        admin=caller.is_admin,
        agent=caller.id if caller.role is Role.AGENT else None,
        generator=caller.id if caller.role is Role.GENERATOR else None,
    )


router = Router(path="/", route_handlers=[verify_pak])
