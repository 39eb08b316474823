"""Broker settings sections and their loader (D20). Nothing else in the broker reads os.environ."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

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


class BrokerSection(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    host: str = "0.0.0.0"  # noqa: S104 - the reference listens on all interfaces
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 3000
    # Seeds the admin identity on first start only (D5); never logged.
    admin_pak: str = ""
    admin_pak_hash: str = ""

    def __post_init__(self) -> None:
        if self.admin_pak and self.admin_pak_hash:
            raise ValueError("set broker.admin_pak or broker.admin_pak_hash, not both")
        if self.admin_pak and not paks.is_well_formed(self.admin_pak):
            raise ValueError("broker.admin_pak is not a PAK of the form brokkr_BR<6>_<long>")
        if self.admin_pak_hash and not _HEX64.match(self.admin_pak_hash):
            raise ValueError("broker.admin_pak_hash must be 64 hexadecimal characters (SHA-256)")


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
            "database.url must start with postgresql:// or sqlite:// (got another scheme)"
        )


class LiveSettings:
    """The settings in force. A reload (D20) swaps in a new object; code that must see reloaded
    values (limits, TTLs, log level) reads ``current`` when it acts, never a copy taken at start."""

    def __init__(self, settings: Settings) -> None:
        self.current = settings


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
