"""What every use case needs from the running broker, built once by the composition root."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from brokkr.broker import db
from brokkr.broker.caches.objects import ObjectCache
from brokkr.broker.caches.state_versions import StateVersions
from brokkr.broker.domain import access, audit
from brokkr.broker.domain.secrets import Secrets
from brokkr.broker.sandbox import Renderer
from brokkr.broker.services.channel import Hub
from brokkr.broker.services.telemetry import Telemetry
from brokkr.broker.services.work import Work, unit_of_work
from brokkr.broker.settings import LiveSettings, Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Context:
    database: db.Database
    data_dir: Path
    # Drops a revoked PAK hash from this process's auth cache, right after the revoking commit.
    forget_pak: Callable[[str], None]
    # Target-state ETags this process may trust; told of every change after its commit.
    versions: StateVersions = field(default_factory=StateVersions)
    objects: ObjectCache = field(default_factory=ObjectCache)
    # Validates template parameters and renders templates in a worker process.
    renderer: Renderer = field(default_factory=Renderer)
    now: Callable[[], datetime] = field(default=utc_now)
    settings: LiveSettings = field(default_factory=lambda: LiveSettings(Settings()))
    # How often failures are audited, and what to tell (a metric) of those that are not.
    audit_throttle: audit.Throttle = field(default_factory=audit.Throttle)
    audit_dropped: Callable[[str], None] = field(default=lambda action: None)
    # Told of every webhook delivery attempt that ended: outcome ("success", "failed" to be
    # retried, "dead") and seconds until the receiver's answer or the timeout (a metric).
    webhook_delivered: Callable[[str, float], None] = field(default=lambda outcome, seconds: None)
    # Encrypts and decrypts webhook URLs, auth headers and secrets (D10); keyed at start.
    secrets: Secrets = field(default_factory=Secrets)
    # Set after a commit that queued webhook deliveries, here or (PostgreSQL NOTIFY) in another
    # broker: the delivery worker wakes at once instead of at its next interval.
    webhooks_due: asyncio.Event = field(default_factory=asyncio.Event)
    # This broker process among the brokers of its database: hints it announces carry it.
    instance_id: UUID = field(default_factory=uuid4)
    # The `brokkr serve` this process belongs to: its worker processes share it (what one server
    # does once for itself, such as counting the fleet gauges, is keyed by it).
    server_id: UUID = field(default_factory=uuid4)
    # Asks the other workers of this server to reload their configuration too.
    reload_others: Callable[[], None] = field(default=lambda: None)
    # This broker's agent-channel connections and live-stream subscribers.
    hub: Hub = field(default_factory=Hub)
    # Stack telemetry: its batch writer and the live streams of stacks on this broker.
    telemetry: Telemetry = field(default_factory=Telemetry)

    def work(self, caller: access.Caller | None) -> AbstractAsyncContextManager[Work]:
        """Open a unit of work for ``caller`` (None: the broker itself acts)."""
        return unit_of_work(
            self.database,
            caller=caller,
            now=self.now(),
            changed=self.state_changed,
            forget_pak=self.forget_pak,
            webhooks_due=self.webhooks_due,
            origin=self.instance_id,
            hinted=self.hub.hinted,
        )

    def state_changed(self, agent_id: UUID | None) -> None:
        """Some agent's target state changed, here after a commit or on another broker (None:
        any agent's, or news was missed): trusted ETags go, and the agent's channel connection
        is re-checked."""
        self.versions.changed(agent_id)
        self.hub.state_changed(agent_id)
