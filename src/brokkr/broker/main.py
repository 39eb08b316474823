"""What `brokkr serve`, `brokkr db upgrade` and `brokkr admin rotate-pak` run."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import cast

import uvicorn
from litestar import Litestar

from brokkr.broker import db, migrations, protocol, services
from brokkr.broker.app import create_asgi
from brokkr.broker.services.context import Context
from brokkr.broker.settings import LiveSettings, Settings, Source
from brokkr.common import logging as brokkr_logging

log = logging.getLogger(__name__)

# Seconds uvicorn lets in-flight requests finish after SIGTERM/SIGINT.
SHUTDOWN_GRACE_SECONDS = 20


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    config_file: Path | None = None,
) -> None:
    """Run the broker until SIGTERM/SIGINT; SIGHUP reloads ``config_file`` and the environment."""
    brokkr_logging.configure(level=settings.log.level, as_json=settings.log.format == "json")
    app = create_asgi(settings, source=Source(config_file=config_file))
    live: LiveSettings = cast("Litestar", app.app).state.ctx.settings
    config = uvicorn.Config(
        app,
        host=host or settings.broker.host,
        port=port or settings.broker.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        loop="auto",
        http=protocol.with_deadlines(lambda: live.current.limits),
    )
    log.info(
        "broker starting",
        extra={
            "fields": {
                "host": config.host,
                "port": config.port,
                "database": _database_kind(settings),
            }
        },
    )
    # uvicorn re-raises the stop signal after its graceful shutdown; a SIGTERM stop is a clean
    # exit (status 0), not death by signal.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.Server(config).run()


def _database_kind(settings: Settings) -> str:
    return "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"


def _database(settings: Settings) -> db.Database:
    return db.create(
        settings.database_url,
        pool_size=2,
        timeouts=settings.database.timeouts(),
    )


def upgrade_database(settings: Settings) -> str:
    """Apply pending migrations; returns the revision now current."""

    async def run() -> str:
        database = _database(settings)
        try:
            await migrations.upgrade(database)
        finally:
            await database.dispose()
        return migrations.head()

    return asyncio.run(run())


def rotate_admin_pak(settings: Settings) -> str:
    """Replace the admin PAK (migrating first if needed) and return the new plaintext key."""

    async def run() -> str:
        database = _database(settings)
        try:
            await migrations.upgrade(database)
            ctx = Context(
                database=database, data_dir=settings.data_path, forget_pak=lambda _hash: None
            )
            pak = await services.admin.rotate_pak(ctx)
        finally:
            await database.dispose()
        return pak.plaintext

    return asyncio.run(run())
