"""The composition root: ``create_app(settings)`` wires settings, database, auth and routers.

Building the app opens nothing; the lifespan migrates the schema, bootstraps the admin (D5),
starts the revocation listener (D7), and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components

import brokkr
from brokkr.broker import db, migrations, private_files, services
from brokkr.broker.api import (
    agent_channel,
    agent_events,
    agent_metadata,
    agents,
    audit_logs,
    auth,
    bodies,
    config,
    denials,
    dependencies,
    deployment_objects,
    diagnostics,
    docs,
    errors,
    generators,
    health,
    ops,
    security,
    stack_metadata,
    stacks,
    targets,
    telemetry,
    template_metadata,
    templates,
    webhook_deliveries,
    webhooks,
    work_orders,
    ws_connections,
)
from brokkr.broker.api.observability import Observability
from brokkr.broker.auth.authenticator import Authenticator
from brokkr.broker.auth.cache import IdentityCache
from brokkr.broker.domain.errors import BrokerError
from brokkr.broker.jobs.diagnostics import DiagnosticMaintenance
from brokkr.broker.jobs.gauges import GaugeRefresh
from brokkr.broker.jobs.retention import Retention
from brokkr.broker.jobs.webhook_delivery import WebhookDelivery
from brokkr.broker.jobs.work_orders import WorkOrderMaintenance
from brokkr.broker.metrics import Metrics
from brokkr.broker.services.channel import Hub
from brokkr.broker.services.context import Context
from brokkr.broker.services.telemetry import Telemetry
from brokkr.broker.settings import CorsSettings, LiveSettings, Settings, Source
from brokkr.common import logging as brokkr_logging

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Serving:
    """Where an app runs within ``brokkr serve``: ``prepared`` when the serving process already
    migrated the database and bootstrapped the admin; worker ``worker`` of ``workers`` sharing
    the socket, all with the same ``server_id``; ``ready`` tells the supervisor the app started
    (and reloads on SIGHUP); ``reload_others`` asks it to reload the other workers (after a
    reload through the API, which reaches only this one)."""

    prepared: bool = False
    worker: int = 0
    workers: int = 1
    server_id: UUID = field(default_factory=uuid4)
    ready: Callable[[], None] | None = None
    reload_others: Callable[[], None] | None = None


MAX_BODY_BYTES = 2 * 1024 * 1024
# Answers above a few KiB are gzipped for clients that accept it (target-state YAML shrinks ~7x).
# Level 1: compression runs on the event loop, and higher levels cost 2-6x the time for ~10% less.
GZIP = CompressionConfig(backend="gzip", minimum_size=4096, gzip_compress_level=1)


def create_app(
    settings: Settings,
    *,
    source: Source | None = None,
    sighup: bool = False,
    serving: Serving | None = None,
) -> Litestar:
    """``source``: where a reload re-reads the settings; ``sighup``: reload on SIGHUP (serve);
    ``serving``: the process of ``brokkr serve`` this app runs in (None: a standalone app that
    migrates and bootstraps its database itself)."""
    serving = serving or Serving()
    database = db.create(
        settings.database_url,
        pool_size=settings.database.pool_size,
        timeouts=settings.database.timeouts(),
    )
    cache = IdentityCache(
        ttl=settings.auth.cache_ttl_seconds, max_entries=settings.auth.cache_max_entries
    )
    metrics = Metrics(worker=serving.worker)
    hub = Hub(metrics)

    def forget_pak(pak_hash: str | None) -> None:
        # D7: a revoked PAK is forgotten by the auth cache and ends the agent's channel.
        cache.forget(pak_hash)
        hub.revoked(pak_hash)

    ctx = Context(
        database=database,
        data_dir=settings.data_path,
        forget_pak=forget_pak,
        hub=hub,
        settings=LiveSettings(settings, source=source),
        audit_dropped=metrics.audit_dropped,
        webhook_delivered=metrics.webhook_delivered,
        telemetry=Telemetry(observer=metrics),
        server_id=serving.server_id,
        reload_others=serving.reload_others or _nobody_else,
    )
    db.instrumentation.watch_queries(database, metrics.query)
    metrics.watch_pools(lambda: db.instrumentation.pool_usage(database))
    authenticator = Authenticator(ctx, cache)
    listener = db.notify.ChangeListener(
        database,
        on_revoked=forget_pak,
        on_state_changed=ctx.state_changed,
        on_webhooks_due=ctx.webhooks_due.set,
        on_hint=ctx.hub.noticed,
    )

    runtime = Runtime(
        settings=settings,
        ctx=ctx,
        listener=listener,
        metrics=metrics,
        sighup=sighup,
        prepared=serving.prepared,
        ready=serving.ready,
    )

    api = Router(
        path="/api/v1",
        route_handlers=[
            agents.router,
            agent_metadata.router,
            targets.router,
            agent_events.router,
            generators.router,
            stacks.router,
            telemetry.router,
            stack_metadata.router,
            deployment_objects.router,
            templates.router,
            template_metadata.router,
            auth.router,
            audit_logs.router,
            config.router,
            work_orders.router,
            diagnostics.router,
            health.router,
            webhook_deliveries.router,
            webhooks.router,
            ws_connections.router,
        ],
        guards=[dependencies.authenticate, bodies.json_only],
    )
    app = Litestar(
        route_handlers=[api, agent_channel.agent_channel, telemetry.live, ops.router, docs.router],
        dependencies=dependencies.PROVIDERS,
        exception_handlers=errors.HANDLERS,  # type: ignore[arg-type]
        after_exception=[denials.record],
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
        state=State(
            {
                "ctx": ctx,
                "runtime": runtime,
                "authenticator": authenticator,
                "metrics": metrics,
                "schema_head": migrations.head(),
            }
        ),
        cors_config=_cors(settings.cors),
        openapi_config=OpenAPIConfig(
            title="brokkr-broker",
            version=brokkr.__version__,
            description="Brokkr v1 API: stacks of Kubernetes objects for fleets of clusters.",
            path="/docs/litestar",
            render_plugins=[],
            components=Components(security_schemes=dict(security.SCHEMES)),
        ),
        request_max_body_size=MAX_BODY_BYTES,
        compression_config=GZIP,
        logging_config=None,
        debug=False,
    )
    _follow_reloads(app, cache)
    return app


class Runtime:
    """What starts and stops with the server: schema migration, admin bootstrap, listeners, jobs."""

    def __init__(
        self,
        *,
        settings: Settings,
        ctx: Context,
        listener: db.notify.ChangeListener,
        metrics: Metrics,
        sighup: bool = False,
        prepared: bool = False,
        ready: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._prepared = prepared
        self._ready = ready
        self._ctx = ctx
        self._listener = listener
        self._metrics = metrics
        self._sighup = sighup
        self._reloads: set[asyncio.Task[None]] = set()
        self.retention = Retention(ctx)
        self.work_orders = WorkOrderMaintenance(ctx)
        self.diagnostics = DiagnosticMaintenance(ctx)
        self.gauges = GaugeRefresh(ctx, metrics.publish)
        self.webhooks = WebhookDelivery(ctx)

    async def start(self) -> None:
        if self._settings.data_path.exists():
            private_files.ensure_dir(self._settings.data_path)
        if not self._prepared:
            await migrations.upgrade(self._ctx.database)
        await self._ctx.database.open_fast_pool()
        await services.webhook_key.load(self._ctx, self._settings)
        if not self._prepared:
            await bootstrap_admin(self._ctx, self._settings)
        await self._listener.start()
        self._ctx.hub.start(self._ctx)
        self.retention.start()
        self.work_orders.start()
        self.diagnostics.start()
        self.gauges.start()
        self._metrics.start()
        self.webhooks.start()
        await self._ctx.telemetry.start(self._ctx)
        if self._sighup:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        if self._ready is not None:
            self._ready()

    def _reload_on_signal(self) -> None:
        # D20: SIGHUP reloads like POST /admin/config/reload (the default action would stop us).
        task = asyncio.create_task(self._reload(), name="broker-config-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload(self) -> None:
        try:
            outcome = await services.config.reload(self._ctx, caller=None)
        except BrokerError as exc:
            log.error("configuration not reloaded (SIGHUP): %s", exc.message)
            return
        log.info("configuration reloaded (SIGHUP): %s", outcome.message)

    async def stop(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        # Agents are told first (1001): they reconnect to another replica or after the restart.
        await self._ctx.hub.stop()
        await self.retention.stop()
        await self.work_orders.stop()
        await self.diagnostics.stop()
        await self.gauges.stop()
        await self._metrics.stop()
        await self.webhooks.stop()
        await self._ctx.telemetry.stop()
        await self._listener.stop()
        self._ctx.renderer.close()
        await self._ctx.database.dispose()


def _nobody_else() -> None:
    """A single-process broker has no other worker to reload."""


def create_asgi(
    settings: Settings, *, source: Source | None = None, serving: Serving | None = None
) -> Observability:
    """The app as served: wrapped by request ids, access logs and metrics; reloads on SIGHUP."""
    app = create_app(settings, source=source, sighup=True, serving=serving)
    worker = serving.worker if serving is not None and serving.workers > 1 else None
    return Observability(app, app.state.metrics, worker=worker)


async def bootstrap_admin(ctx: Context, settings: Settings) -> None:
    """D5: seed the admin identity on a database that has none (printing a generated PAK once)."""
    outcome = await services.admin.bootstrap(
        ctx, admin_pak=settings.broker.admin_pak, admin_pak_hash=settings.broker.admin_pak_hash
    )
    if outcome.generated_pak:
        _print_banner(outcome.generated_pak, outcome)


def _follow_reloads(app: Litestar, cache: IdentityCache) -> None:
    """What reads its settings once (the log handler, CORS, the auth cache) follows a reload."""
    live: LiveSettings = app.state.ctx.settings

    def apply(old: Settings, new: Settings) -> None:
        if new.log != old.log:
            brokkr_logging.configure(level=new.log.level, as_json=new.log.format == "json")
        if new.cors != old.cors and app.cors_config is not None:
            # The CORS middleware holds this object: it becomes the new configuration in place
            # (its cached derived values go with the old attributes).
            vars(app.cors_config).clear()
            vars(app.cors_config).update(vars(_cors(new.cors)))
        cache.configure(ttl=new.auth.cache_ttl_seconds, max_entries=new.auth.cache_max_entries)

    live.subscribe(apply)


def _cors(cors: CorsSettings) -> CORSConfig:
    return CORSConfig(
        allow_origins=cors.allowed_origins,
        allow_methods=cors.allowed_methods,  # type: ignore[arg-type]
        allow_headers=cors.allowed_headers,
        max_age=cors.max_age_seconds,
    )


def _print_banner(plaintext: str, outcome: services.admin.Bootstrap) -> None:
    # Deliberately not logged: logs are shipped and kept, and the formatter masks PAKs anyway.
    rule = "=" * 78
    sys.stdout.write(
        f"\n{rule}\n  BROKKR ADMIN PAK (shown once; also saved to {outcome.pak_file}, "
        f"mode 0600)\n\n  {plaintext}\n\n"
        f"  Store it in a secret manager. Rotate with: brokkr admin rotate-pak\n{rule}\n\n"
    )
    sys.stdout.flush()
