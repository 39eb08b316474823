"""/admin/config/reload: re-read the configuration and apply what can change live (D20)."""

from __future__ import annotations

from litestar import Router, post

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire


@post(
    "/admin/config/reload",
    operation_id="reload_config",
    status_code=200,
    summary="Reload the broker configuration",
    description=(
        "Re-reads the configuration file and the `BROKKR__*` environment and applies the "
        "settings that can change live (log level and format, CORS, auth cache, limits, "
        "retention). `changes` lists what now differs. Keys read only at start (data_dir, "
        "database.*, broker.host/port/workers/admin_pak*) are named in `message` and keep their "
        "value until a restart. An invalid configuration changes nothing and answers 422 with "
        "`details.keys`. Every worker process of this broker reloads (the answer tells the "
        "worker that served it); other replicas do not. The broker also reloads on SIGHUP."
    ),
    security=security.ADMIN,
    responses=responses.errors(422),
    tags=["admin"],
)
async def reload_config(ctx: ContextDep, caller: CallerDep) -> wire.ConfigReloadResponse:
    return await services.config.reload(ctx, caller=caller)


router = Router(path="/", route_handlers=[reload_config])
