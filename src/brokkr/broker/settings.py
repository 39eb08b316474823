"""Broker settings sections and their loader (D20). Nothing else in the broker reads os.environ."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import paks
from brokkr.common import settings as layered
from brokkr.common.settings import LogSettings

# Sections of the shared BROKKR__* namespace that other programs own.
FOREIGN_SECTIONS = ("agent", "telemetry")

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class DatabaseSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    # Empty means the embedded SQLite database at <data_dir>/brokkr.db (D19).
    url: str = ""
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20
    connect_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # A request waits at most this long for a pooled connection (or a new one) before its 503:
    # with the database unreachable, requests fail fast instead of piling up.
    acquire_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    # One SQL statement may run this long (PostgreSQL cancels it; the client also gives up
    # when a frozen network never answers); then the request is a 503 database_unavailable.
    statement_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    # SQLite has one writer: a write queues in the broker at most this long for its turn.
    write_wait_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0

    def timeouts(self) -> db.Timeouts:
        return db.Timeouts(
            connect=self.connect_timeout_seconds,
            acquire=self.acquire_timeout_seconds,
            statement=self.statement_timeout_seconds,
            write_wait=self.write_wait_timeout_seconds,
        )


class BrokerSection(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    host: str = "0.0.0.0"  # noqa: S104 - the reference listens on all interfaces
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 3000
    # Native TLS (HTTPS and WSS on the same port) for brokers without a TLS-terminating ingress:
    # PEM certificate (chain) and private key files, both or neither; read once at start.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Worker processes `brokkr serve` runs, each a whole broker sharing the listening socket:
    # 0 picks the usable cores on PostgreSQL and 1 on SQLite (which allows no more than one).
    workers: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    # Seeds the admin identity on first start only (D5); never logged.
    admin_pak: str = ""
    admin_pak_hash: str = ""
    # D10: the AES-256 key (64 hex characters) encrypting webhook URLs, auth headers and secrets.
    # Empty: a key generated once and kept in <data_dir>/webhook.key (0600). Brokers sharing one
    # PostgreSQL database must all be given the same key. Never logged (its fingerprint is).
    webhook_encryption_key: str = ""
    # Webhook URLs whose host is an IP address inside one of these networks (CIDRs) are refused;
    # empty allows every address (in-cluster receivers are often private or loopback).
    webhook_denied_networks: list[str] = msgspec.field(default_factory=list)
    # Audit records older than this many days are deleted by a background job; 0 keeps them all.
    audit_log_retention_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = 90
    # Webhook deliveries that ended (success or dead) this many days ago are deleted; 0 keeps them.
    webhook_cleanup_retention_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = 7
    # Agent events older than this are deleted, except the newest of each status per agent and
    # deployment object (what target state and report checks read); 0 keeps them all.
    agent_event_retention_days: Annotated[int, msgspec.Meta(ge=0, le=36_500)] = 30
    # A deployment health row not refreshed by its agent for this long reads as ``unknown`` with
    # ``stale`` set (3 x the agent's default 60 s reporting interval); 0 never marks rows stale.
    health_stale_after_seconds: Annotated[float, msgspec.Meta(ge=0, le=31_536_000)] = 180.0
    # Diagnostic maintenance runs this often: unclaimed requests past their expiry become
    # expired, claims unanswered for diagnostic_claim_timeout_seconds become failed, and requests
    # that ended more than diagnostic_max_age_hours ago are deleted with their results.
    diagnostic_cleanup_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 60.0
    diagnostic_claim_timeout_seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    diagnostic_max_age_hours: Annotated[int, msgspec.Meta(ge=1, le=87_600)] = 24
    # The webhook delivery worker wakes when a commit queued deliveries (on any broker of the
    # database) or, failing that, this often (retries falling due, claims gone stale); it claims
    # at most webhook_delivery_batch_size deliveries at a time and has at most
    # webhook_delivery_concurrency requests in flight.
    webhook_delivery_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0
    webhook_delivery_batch_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    webhook_delivery_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    # A failed delivery is retried after about base x 2^(attempt-1) seconds (equal jitter: between
    # half and all of it), never more than the maximum apart.
    webhook_retry_base_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    webhook_retry_max_seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 3600.0
    # Stack telemetry (Kubernetes events and pod log lines from the agent channel) is kept this
    # long, never more than six hours (the reference's ceiling: Brokkr is not a log warehouse).
    telemetry_retention_seconds: Annotated[int, msgspec.Meta(ge=60, le=21_600)] = 21_600
    # Telemetry frames are written in batches: at most this many rows, at least this often.
    telemetry_batch_rows: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    telemetry_flush_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.25

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file.strip()) != bool(self.tls_key_file.strip()):
            raise ValueError(
                "set both broker.tls_cert_file and broker.tls_key_file (native TLS), or neither"
            )
        if self.admin_pak and self.admin_pak_hash:
            raise ValueError("set broker.admin_pak or broker.admin_pak_hash, not both")
        if self.admin_pak and not paks.is_well_formed(self.admin_pak):
            raise ValueError("broker.admin_pak is not a PAK of the form brokkr_BR<6>_<long>")
        if self.admin_pak_hash and not _HEX64.match(self.admin_pak_hash):
            raise ValueError("broker.admin_pak_hash must be 64 hexadecimal characters (SHA-256)")
        if self.webhook_encryption_key and not _HEX64.match(self.webhook_encryption_key.strip()):
            raise ValueError(
                "broker.webhook_encryption_key must be 64 hexadecimal characters (32 bytes)"
            )
        for network in self.webhook_denied_networks:
            try:
                ipaddress.ip_network(network.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"broker.webhook_denied_networks: {network!r} is not a network (CIDR)"
                ) from None


class AuthSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    # D7: verified PAKs are cached at most this long; 0 disables the cache.
    cache_ttl_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    cache_max_entries: Annotated[int, msgspec.Meta(ge=1)] = 10_000


class CorsSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    allowed_origins: list[str] = msgspec.field(default_factory=lambda: ["http://localhost:3001"])
    allowed_methods: list[str] = msgspec.field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    )
    allowed_headers: list[str] = msgspec.field(
        default_factory=lambda: ["Authorization", "Content-Type", "If-None-Match"]
    )
    max_age_seconds: Annotated[int, msgspec.Meta(ge=0)] = 3600


class LimitsSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Bounds on what one caller may send or be sent (sizes, depths, times)."""

    # A list answer stops adding items before its JSON passes this size (one item always fits),
    # so a page of large deployment objects cannot exhaust memory; X-Next-Offset gives the rest.
    list_page_bytes: Annotated[int, msgspec.Meta(ge=1024, le=256 * 1024 * 1024)] = 4 * 1024 * 1024
    # Target state is streamed in batches of about this many bytes of YAML, bounding the memory
    # one poll holds however many stacks reach the agent (every object is still sent).
    target_state_batch_bytes: Annotated[int, msgspec.Meta(ge=1024, le=256 * 1024 * 1024)] = (
        4 * 1024 * 1024
    )
    # JSON request bodies nested deeper than this are refused (422) before they are decoded:
    # the decoder recurses, so a few KiB of "[[[[" would otherwise end in a RecursionError (500).
    max_json_depth: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100
    # A deployment object's YAML larger than this (UTF-8 bytes) is refused (413) before it is
    # parsed: parsing costs time and ~20x its size in memory.
    max_deployment_object_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = (
        2 * 1024 * 1024
    )
    # YAML nested deeper than this is refused (422): the constructors recurse, and no Kubernetes
    # object nests a hundred levels.
    max_yaml_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    # One YAML scalar longer than this is refused (422): a ConfigMap holds at most 1 MiB anyway.
    max_yaml_scalar_chars: Annotated[int, msgspec.Meta(ge=1)] = 1024 * 1024
    # Billion laughs: YAML whose aliases expand it to more than this multiple of its source (in
    # nodes or characters) is refused (422), since every agent would expand it while stamping.
    max_yaml_expansion: Annotated[int, msgspec.Meta(ge=1)] = 10
    # Manifests are validated in a worker thread; one not validated within this long (queued
    # behind others included) answers 503 instead of holding its request open.
    manifest_validation_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    # A client must finish sending a request's headers this long after its first byte (or after
    # connecting), else the connection is closed: trickled headers would hold it open forever.
    header_read_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0
    # A request's body must arrive within this long of its headers (2 MiB at ~70 KiB/s); a
    # trickled body gets 408 and the connection is closed.
    body_read_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # Failed authentications and denied writes are audited at most this often per source address
    # and per key id; the rest are only counted (brokkr_audit_records_dropped_total).
    audit_failures_per_minute: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 60
    # ... and at most this often in all, however many addresses a flood comes from.
    audit_failures_per_minute_total: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 600
    # Addresses and key ids that rate limit remembers; the least recently seen are forgotten.
    audit_failure_sources: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    # Steps one template render may take (minijinja fuel; long strings cost more) before it is
    # stopped (422): an endless loop must not hold a worker thread. A 40-line manifest uses ~500.
    template_fuel: Annotated[int, msgspec.Meta(ge=1000, le=100_000_000)] = 1_000_000
    # A render producing more than this (UTF-8 bytes) is refused (422); matches the largest
    # deployment object accepted by default, which is what the output becomes.
    template_max_output_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = (
        2 * 1024 * 1024
    )
    # Templates render in a worker process (brokkr.broker.sandbox): one render that runs longer
    # is a 422 and the worker is replaced; its address space is capped at this many bytes
    # (applied when the next worker starts).
    template_render_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    template_render_memory_bytes: Annotated[
        int, msgspec.Meta(ge=256 * 1024 * 1024, le=64 * 1024 * 1024 * 1024)
    ] = 1024 * 1024 * 1024
    # A template's content larger than this (UTF-8 bytes) is refused (413) before it is compiled:
    # compiling costs time and memory, and real templates are a few KiB.
    template_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # The work-order log grows forever: a list without ``limit`` returns this many newest entries,
    # and no ``limit`` may ask for more than the maximum (400), so one call cannot dump it all.
    work_order_log_default_limit: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 100
    work_order_log_max_limit: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    # How often due retries return to PENDING and stale claims are released; a retry waits up to
    # this much past its backoff (the reference ticks every 10 s).
    work_order_maintenance_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    # Agent channel (/internal/ws/agent) and live stack streams. A frame larger than
    # ws_max_frame_bytes is dropped and counted (the connection stays); one larger than
    # ws_max_message_bytes ends that connection (the WebSocket layer refuses to buffer it).
    ws_max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    ws_max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # Telemetry frames (k8s_event, pod_log_line, log_gap) one agent connection may send per
    # second (bursts of twice that); the rest are dropped and counted.
    ws_telemetry_frames_per_second: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 500
    # Frames queued towards one connection (agent or live subscriber); control frames (hints,
    # acknowledgements) go before telemetry, and telemetry past the bound is dropped and
    # reported to the subscriber as a log_gap with the true count.
    ws_send_queue_frames: Annotated[int, msgspec.Meta(ge=16, le=100_000)] = 256
    # Agent connections and live subscribers one broker accepts; beyond, upgrades get 503.
    ws_max_agent_connections: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 20_000
    ws_max_live_subscribers: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    # Telemetry rows waiting for their batch insert; past this, frames are dropped and counted
    # (a slow database must not grow the broker's memory).
    telemetry_buffer_rows: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 20_000
    # A health report (PATCH /agents/{id}/health-status) may hold at most this many entries (422
    # otherwise); the route's body limit is sized for 1000 entries, hence the upper bound.
    health_report_max_entries: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1000
    # A diagnostic result whose three documents together are larger than this (UTF-8 bytes) is
    # refused (413); the body itself is refused while it arrives once it could not fit.
    diagnostic_result_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=256 * 1024 * 1024)] = (
        4 * 1024 * 1024
    )


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    data_dir: str = "./.brokkr"
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    broker: BrokerSection = msgspec.field(default_factory=BrokerSection)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    cors: CorsSettings = msgspec.field(default_factory=CorsSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL: PostgreSQL when configured, else the embedded SQLite file."""
        url = self.database.url.strip()
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_path / 'brokkr.db').resolve()}"
        for scheme in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url[len(scheme) :]
        if url.startswith(("sqlite://", "sqlite+aiosqlite://")):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        raise layered.SettingsError(
            "database.url must start with postgresql:// or sqlite:// (got another scheme)",
            keys=("database.url",),
        )


# Read once at start (listening socket, database pool, files, the first-start admin seed): a
# reload reports a change to them and keeps the running value until the broker restarts.
RESTART_REQUIRED = (
    "data_dir",
    "database",
    "broker.host",
    "broker.port",
    "broker.workers",
    "broker.tls_cert_file",
    "broker.tls_key_file",
    "broker.admin_pak",
    "broker.admin_pak_hash",
    "broker.webhook_encryption_key",
)
# Never shown in a reload's answer or audit record.
_SECRETS = ("broker.admin_pak", "broker.admin_pak_hash", "broker.webhook_encryption_key")
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


@dataclass(frozen=True)
class Source:
    """Where the settings come from, so a reload (D20) re-reads the same places."""

    config_file: Path | None = None
    # None: the process environment as it is when read.
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Change:
    key: str
    old: str
    new: str

    @property
    def needs_restart(self) -> bool:
        return any(self.key == key or self.key.startswith(key + ".") for key in RESTART_REQUIRED)


class LiveSettings:
    """The settings in force. A reload (D20) swaps in a new object; code that must see reloaded
    values (limits, TTLs, log level) reads ``current`` when it acts, never a copy taken at start.
    What cannot read it per use (the log handler, CORS, the auth cache) subscribes to swaps."""

    def __init__(self, settings: Settings, *, source: Source | None = None) -> None:
        self.current = settings
        self.source = source or Source()
        self._subscribers: list[Callable[[Settings, Settings], None]] = []

    def subscribe(self, apply: Callable[[Settings, Settings], None]) -> None:
        """Call ``apply(old, new)`` after each swap."""
        self._subscribers.append(apply)

    def reread(self) -> Settings:
        """The settings the source holds now; raises ``SettingsError`` naming the bad keys."""
        return load(config_file=self.source.config_file, environ=self.source.environ)

    def swap(self, loaded: Settings) -> None:
        """Put ``loaded`` in force but for the restart-only keys."""
        old, self.current = self.current, keep_restart_only(self.current, loaded)
        for apply in self._subscribers:
            apply(old, self.current)


def compare(old: Settings, new: Settings) -> list[Change]:
    before, after = _flatten(old), _flatten(new)
    return [
        Change(key, _shown(key, before[key]), _shown(key, after[key]))
        for key in after
        if before.get(key) != after[key]
    ]


def keep_restart_only(running: Settings, loaded: Settings) -> Settings:
    merged: dict[str, Any] = msgspec.to_builtins(loaded)
    kept: dict[str, Any] = msgspec.to_builtins(running)
    for key in RESTART_REQUIRED:
        section, _, name = key.partition(".")
        if name:
            merged[section][name] = kept[section][name]
        else:
            merged[section] = kept[section]
    return msgspec.convert(merged, Settings)


def _flatten(settings: Settings) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in msgspec.to_builtins(settings).items():
        if isinstance(value, dict):
            flat.update({f"{name}.{key}": _text(item) for key, item in value.items()})
        else:
            flat[name] = _text(value)
    return flat


def _text(value: object) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _shown(key: str, value: str) -> str:
    if key in _SECRETS:
        return "<redacted>" if value else ""
    return _URL_PASSWORD.sub(r"\1<redacted>@", value)


def load(*, config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults < TOML file (``--config`` or ``BROKKR_CONFIG_FILE``) < ``BROKKR__*`` variables."""
    settings = layered.load(
        Settings,
        environ=os.environ if environ is None else environ,
        config_file=config_file,
        foreign_sections=FOREIGN_SECTIONS,
    )
    _ = settings.database_url  # fail at start, naming the key, rather than at first query
    return settings
