"""What `brokkr serve`, `brokkr db upgrade` and `brokkr admin rotate-pak` run."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import uvicorn
from litestar import Litestar

from brokkr.broker import db, migrations, private_files, protocol, services
from brokkr.broker.app import Serving, bootstrap_admin, create_asgi
from brokkr.broker.domain import errors, paks
from brokkr.broker.services.context import Context
from brokkr.broker.settings import LiveSettings, Settings, Source
from brokkr.broker.supervisor import (
    READY,
    RELOAD_OTHERS,
    Supervisor,
    usable_cores,
    watch_parent,
)
from brokkr.common import logging as brokkr_logging

log = logging.getLogger(__name__)

# A WebSocket peer that answers no ping within this long is gone (a cluster's NAT dropped it).
WS_PING_SECONDS = 20.0

T = TypeVar("T")

# Seconds uvicorn lets in-flight requests finish after SIGTERM/SIGINT.
SHUTDOWN_GRACE_SECONDS = 20
# ... and the supervisor gives a worker this much more (closing channels and pools) before
# killing it.
WORKER_STOP_MARGIN_SECONDS = 10
# A worker whose app could not start exits with this status (uvicorn's own).
STARTUP_FAILED = 3


class StartupError(Exception):
    """A command that cannot use its database, told in one line: what, where, and why."""


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    config_file: Path | None = None,
    tls: TlsFiles | None = None,
    workers: int | None = None,
) -> int:
    """Run the broker until SIGTERM/SIGINT; SIGHUP reloads ``config_file`` and the environment.
    ``tls`` (else ``broker.tls_cert_file``/``tls_key_file``) serves HTTPS and WSS. ``workers``
    (else ``broker.workers``; 0: automatic) processes serve one socket, supervised by this one.
    Returns the exit status; raises ``StartupError`` when the TLS files, the worker count or the
    database cannot be used."""
    brokkr_logging.configure(level=settings.log.level, as_json=settings.log.format == "json")
    tls = tls or TlsFiles.of(settings)
    if tls is not None:
        tls.check()
    count = worker_count(settings, workers)
    # Opened once before any worker starts, so a wrong URL or a missing database is one line
    # naming the cause, not a traceback of a failed lifespan, and the schema is migrated and
    # the admin seeded by one process rather than raced by N.
    prepare_database(settings)
    spec = _WorkerSpec(
        settings=settings,
        host=host or settings.broker.host,
        port=port or settings.broker.port,
        config_file=config_file,
        tls=tls,
        workers=count,
        server_id=uuid4(),
    )
    log.info(
        "broker starting",
        extra={
            "fields": {
                "host": spec.host,
                "port": spec.port,
                "database": _database_kind(settings),
                "tls": tls is not None,
                "workers": count,
            }
        },
    )
    if count == 1:
        # One worker is this process itself: nothing to supervise.
        _serve(spec, worker=0, sock=None)
        return 0
    sock = _bind(spec)
    try:
        supervisor = Supervisor(
            functools.partial(_serve_worker, spec),
            sock=sock,
            count=count,
            drain_seconds=SHUTDOWN_GRACE_SECONDS + WORKER_STOP_MARGIN_SECONDS,
        )
        return supervisor.run()
    finally:
        sock.close()


def worker_count(settings: Settings, requested: int | None) -> int:
    """The worker processes to run: ``requested`` (else ``broker.workers``), 0 meaning the usable
    cores on PostgreSQL and 1 on SQLite. More than one on SQLite is refused."""
    count = settings.broker.workers if requested is None else requested
    if count < 0:
        raise StartupError(f"--workers must be 0 (automatic) or more, not {count}")
    sqlite = _database_kind(settings) == "sqlite"
    if count == 0:
        return 1 if sqlite else usable_cores()
    if sqlite and count > 1:
        raise StartupError(
            f"{count} workers need a PostgreSQL database: SQLite allows one writer at a time and "
            "the broker queues its writes inside one process, so several worker processes would "
            "fail each other's writes with 'database is locked'. Serve SQLite with one worker "
            "(--workers 1, broker.workers = 1), or use PostgreSQL (database.url)."
        )
    return count


@dataclass(frozen=True, kw_only=True)
class _WorkerSpec:
    """What every worker process needs to serve (sent to each when it is spawned)."""

    settings: Settings
    host: str
    port: int
    config_file: Path | None
    tls: TlsFiles | None
    workers: int
    server_id: UUID


def _bind(spec: _WorkerSpec) -> socket.socket:
    """The listening socket every worker accepts on, bound once by the supervisor."""
    config = uvicorn.Config(_no_app, host=spec.host, port=spec.port, log_config=None)
    try:
        sock = config.bind_socket()
    except SystemExit as exc:
        # uvicorn logs the OS error and exits; the caller wants one line naming the address.
        raise StartupError(f"cannot listen on {spec.host}:{spec.port}") from exc
    sock.set_inheritable(True)
    return sock


async def _no_app(_scope: object, _receive: object, _send: object) -> None:
    """The supervisor's uvicorn.Config only binds the socket; its app is never called."""


def _serve_worker(
    spec: _WorkerSpec, worker: int, sock: socket.socket, supervisor: Connection
) -> None:
    """A worker process's life: a whole broker serving the shared socket until SIGTERM."""
    settings = spec.settings
    brokkr_logging.configure(level=settings.log.level, as_json=settings.log.format == "json")
    # Ctrl-C in a terminal reaches the whole process group; the supervisor alone decides, so a
    # worker does not take the interrupt as a second, forced stop.
    os.setpgrp()
    watch_parent()

    def ready() -> None:
        supervisor.send(READY)

    def reload_others() -> None:
        supervisor.send(RELOAD_OTHERS)

    _serve(spec, worker=worker, sock=sock, ready=ready, reload_others=reload_others)


def _serve(
    spec: _WorkerSpec,
    *,
    worker: int,
    sock: socket.socket | None,
    ready: Callable[[], None] | None = None,
    reload_others: Callable[[], None] | None = None,
) -> None:
    settings = spec.settings
    serving = Serving(
        prepared=True,
        worker=worker,
        workers=spec.workers,
        server_id=spec.server_id,
        ready=ready,
        reload_others=reload_others,
    )
    app = create_asgi(settings, source=Source(config_file=spec.config_file), serving=serving)
    live: LiveSettings = cast("Litestar", app.app).state.ctx.settings
    config = uvicorn.Config(
        app,
        host=spec.host,
        port=spec.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        loop="auto",
        http=protocol.with_deadlines(lambda: live.current.limits),
        # wsproto answers a refused upgrade with the handler's JSON cleanly (uvicorn's
        # websockets-sansio logs each refusal as an error); pings find dead peers.
        ws="wsproto",
        ws_max_size=settings.limits.ws_max_message_bytes,
        ws_ping_interval=WS_PING_SECONDS,
        ws_ping_timeout=WS_PING_SECONDS,
        ssl_certfile=spec.tls.cert if spec.tls else None,
        ssl_keyfile=spec.tls.key if spec.tls else None,
    )
    # uvicorn re-raises the stop signal after its graceful shutdown; a SIGTERM stop is a clean
    # exit (status 0), not death by signal.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
    if not server.started:
        # The lifespan failed (logged by uvicorn): the supervisor counts this toward a crash loop.
        sys.exit(STARTUP_FAILED)


@dataclass(frozen=True)
class TlsFiles:
    """The PEM certificate (chain) and private key the broker serves HTTPS and WSS with."""

    cert: str
    key: str

    @classmethod
    def of(cls, settings: Settings) -> TlsFiles | None:
        """The configured pair, or None for plain HTTP (the settings ensure both or neither)."""
        section = settings.broker
        if not section.tls_cert_file.strip():
            return None
        return cls(cert=section.tls_cert_file.strip(), key=section.tls_key_file.strip())

    def check(self) -> None:
        """Load the pair once before serving, so an unreadable file, a key that does not match
        the certificate or a file that is not PEM is one line naming the files, not a
        traceback from the server's start."""
        for what, path in (("certificate", self.cert), ("private key", self.key)):
            try:
                Path(path).read_bytes()
            except OSError as exc:
                raise StartupError(
                    f"cannot read the TLS {what} file {path}: {exc.strerror or exc}"
                ) from exc
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert, self.key)
        except ssl.SSLError as exc:
            raise StartupError(
                f"cannot use the TLS certificate {self.cert} with the key {self.key} (both PEM, "
                f"the key matching the certificate): {exc.reason or exc}"
            ) from exc


def _database_kind(settings: Settings) -> str:
    return "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"


def describe_database(settings: Settings) -> str:
    """Which database a command uses, for a person: kind and file, or host and name; never
    the password."""
    url = urlsplit(settings.database_url)
    if _database_kind(settings) == "sqlite":
        return f"SQLite database {url.path.removeprefix('/')}"
    where = f"{url.hostname or 'localhost'}:{url.port or 5432}"
    user = f" as {url.username}" if url.username else ""
    return f"PostgreSQL database {url.path.lstrip('/') or '(default)'} on {where}{user}"


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's first line: what the driver or the OS said went wrong."""
    while exc.__cause__ is not None or (
        exc.__context__ is not None and not exc.__suppress_context__
    ):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _run(settings: Settings, work: Callable[[db.Database], Awaitable[T]]) -> T:
    """``work`` on a small pool; any failure becomes a ``StartupError`` naming the database."""

    async def run() -> T:
        database = db.create(
            settings.database_url, pool_size=2, timeouts=settings.database.timeouts()
        )
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except errors.BrokerSchemaMissing as exc:
        raise StartupError(f"{describe_database(settings)}: {exc.message}") from exc
    except services.webhook_key.WebhookKeyUnusable as exc:
        raise StartupError(str(exc)) from exc
    # Whatever the driver, the network or the file system raised: the command cannot go on,
    # and its user needs the cause in one line rather than a traceback.
    except Exception as exc:  # noqa: BLE001
        raise StartupError(
            f"cannot use the {describe_database(settings)}: {_root_cause(exc)}"
        ) from exc


def upgrade_database(settings: Settings) -> str:
    """Apply pending migrations; returns the revision now current."""

    async def upgrade(database: db.Database) -> str:
        await migrations.upgrade(database)
        return migrations.head()

    return _run(settings, upgrade)


def prepare_database(settings: Settings) -> None:
    """What a server does once before serving: apply pending migrations, refuse a webhook key
    that cannot read the stored subscriptions (D10: loudly now, not quietly at every delivery)
    and seed the admin identity on a new database (D5)."""

    async def prepare(database: db.Database) -> None:
        await migrations.upgrade(database)
        ctx = Context(database=database, data_dir=settings.data_path, forget_pak=lambda _hash: None)
        await services.webhook_key.load(ctx, settings)
        await bootstrap_admin(ctx, settings)

    if settings.data_path.exists():
        private_files.ensure_dir(settings.data_path)
    _run(settings, prepare)


def new_admin_pak() -> tuple[str, str]:
    """A fresh well-formed PAK and the SHA-256 the broker stores for it (nothing is written):
    seeds ``broker.admin_pak_hash`` so the plaintext never reaches the broker's host."""
    key = paks.generate()
    return key.plaintext, paks.hash_key(key.plaintext)


def rotate_admin_pak(settings: Settings) -> str:
    """Replace the admin PAK of an existing broker database and return the new plaintext key.
    An embedded database file that does not exist is refused without being created."""
    if _database_kind(settings) == "sqlite":
        file = Path(urlsplit(settings.database_url).path.removeprefix("/"))
        if not file.is_file():
            raise StartupError(f"{describe_database(settings)} does not exist")

    async def rotate(database: db.Database) -> str:
        ctx = Context(database=database, data_dir=settings.data_path, forget_pak=lambda _hash: None)
        return (await services.admin.rotate_pak(ctx)).plaintext

    return _run(settings, rotate)
