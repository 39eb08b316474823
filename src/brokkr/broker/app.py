"""The composition root: ``create_app(settings)`` wires settings, database, auth and routers.

Building the app opens nothing; the lifespan migrates the schema, bootstraps the admin (D5),
starts the revocation listener (D7), and closes everything on shutdown.
"""

from __future__ import annotations

import logging
import sys

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

import brokkr
from brokkr.broker import db, migrations, services
from brokkr.broker.api import (
    agent_events,
    agent_metadata,
    agents,
    audit_logs,
    auth,
    dependencies,
    deployment_objects,
    docs,
    errors,
    generators,
    ops,
    security,
    stack_metadata,
    stacks,
    targets,
)
from brokkr.broker.api.observability import Observability
from brokkr.broker.auth.authenticator import Authenticator
from brokkr.broker.auth.cache import IdentityCache
from brokkr.broker.metrics import Metrics
from brokkr.broker.services.context import Context
from brokkr.broker.settings import LiveSettings, Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024


def create_app(settings: Settings) -> Litestar:
    database = db.create(
        settings.database_url,
        pool_size=settings.database.pool_size,
        connect_timeout=settings.database.connect_timeout_seconds,
    )
    cache = IdentityCache(
        ttl=settings.auth.cache_ttl_seconds, max_entries=settings.auth.cache_max_entries
    )
    ctx = Context(
        database=database,
        data_dir=settings.data_path,
        forget_pak=cache.forget,
        settings=LiveSettings(settings),
    )
    authenticator = Authenticator(ctx, cache)
    listener = db.notify.ChangeListener(
        database, on_revoked=cache.forget, on_state_changed=ctx.versions.changed
    )

    runtime = Runtime(settings=settings, ctx=ctx, listener=listener)

    api = Router(
        path="/api/v1",
        route_handlers=[
            agents.router,
            agent_metadata.router,
            targets.router,
            agent_events.router,
            generators.router,
            stacks.router,
            stack_metadata.router,
            deployment_objects.router,
            auth.router,
            audit_logs.router,
        ],
        guards=[dependencies.authenticate],
    )
    return Litestar(
        route_handlers=[api, ops.router, docs.router],
        dependencies=dependencies.PROVIDERS,
        exception_handlers=errors.HANDLERS,  # type: ignore[arg-type]
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        state=State(
            {
                "ctx": ctx,
                "runtime": runtime,
                "authenticator": authenticator,
                "metrics": Metrics(),
                "schema_head": migrations.head(),
            }
        ),
        cors_config=CORSConfig(
            allow_origins=settings.cors.allowed_origins,
            allow_methods=settings.cors.allowed_methods,  # type: ignore[arg-type]
            allow_headers=settings.cors.allowed_headers,
            max_age=settings.cors.max_age_seconds,
        ),
        openapi_config=OpenAPIConfig(
            title="brokkr-broker",
            version=brokkr.__version__,
            description="Brokkr v1 API: stacks of Kubernetes objects for fleets of clusters.",
            path="/docs/litestar",
            render_plugins=[],
            components=Components(security_schemes=dict(security.SCHEMES)),
        ),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        debug=False,
    )


class Runtime:
    """What starts and stops with the server: schema migration, admin bootstrap, listeners."""

    def __init__(
        self, *, settings: Settings, ctx: Context, listener: db.notify.ChangeListener
    ) -> None:
        self._settings = settings
        self._ctx = ctx
        self._listener = listener

    async def start(self) -> None:
        await migrations.upgrade(self._ctx.database)
        await self._ctx.database.open_fast_pool()
        outcome = await services.admin.bootstrap(
            self._ctx,
            admin_pak=self._settings.broker.admin_pak,
            admin_pak_hash=self._settings.broker.admin_pak_hash,
        )
        if outcome.generated_pak:
            _print_banner(outcome.generated_pak, outcome)
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        await self._ctx.database.dispose()


def create_asgi(settings: Settings) -> Observability:
    """The app as served: wrapped by request ids, access logs and metrics."""
    app = create_app(settings)
    return Observability(app, app.state.metrics)


def _print_banner(plaintext: str, outcome: services.admin.Bootstrap) -> None:
    # Deliberately not logged: logs are shipped and kept, and the formatter masks PAKs anyway.
    rule = "=" * 78
    sys.stdout.write(
        f"\n{rule}\n  BROKKR ADMIN PAK (shown once; also saved to {outcome.pak_file}, "
        f"mode 0600)\n\n  {plaintext}\n\n"
        f"  Store it in a secret manager. Rotate with: brokkr admin rotate-pak\n{rule}\n\n"
    )
    sys.stdout.flush()
