"""The unit of work: the one way a use case changes the broker.

A use case opens ``ctx.work(caller)``, makes its change through ``w.tx`` and declares what the
change means: its audit record (D11), whose target state it changed, which PAK it revoked (D7),
which events leave the broker (D18). Everything declared is written in the same transaction;
what this process must forget (trusted ETags, verified keys) is forgotten only after the commit
succeeded, never after a rollback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, events, hints
from brokkr.broker.domain import audit as trail


class Everyone:
    """Marker for ``state_changed``: any agent's target state may have changed."""


EVERYONE = Everyone()


class Work:
    def __init__(
        self,
        tx: db.Tx,
        *,
        caller: access.Caller | None,
        now: datetime,
        origin: UUID | None = None,
    ) -> None:
        self.tx = tx
        self.now = now
        self._caller = caller
        self._origin = origin
        self._changed: set[UUID | None] = set()
        self._revoked: set[str] = set()
        self._deliveries = 0
        self._hints: list[hints.Hint] = []

    async def audit(
        self,
        action: str,
        resource_type: str,
        resource_id: UUID | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record ``action`` as done by the caller (or by the system when there is none)."""
        entry = trail.by(
            self._caller,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            details=details,
        )
        await db.audit.insert(self.tx, entry, now=self.now)

    async def record(self, entry: trail.Entry) -> None:
        """Record an entry that is not the caller's own success (a failed authentication)."""
        await db.audit.insert(self.tx, entry, now=self.now)

    async def state_changed(self, agents: UUID | Everyone | list[UUID]) -> None:
        """These agents' target state (or, with ``EVERYONE``, possibly any agent's) changed."""
        targets: list[UUID | None]
        if isinstance(agents, Everyone):
            targets = [None]
        elif isinstance(agents, UUID):
            targets = [agents]
        else:
            targets = list(agents)
        for agent_id in targets:
            if agent_id in self._changed or None in self._changed:
                continue
            self._changed.add(agent_id)
            await db.notify.publish_state_change(self.tx, agent_id)

    async def revoked(self, pak_hash: str | None) -> None:
        """A PAK stops working on every broker once this commits; ``None`` (no PAK) is a no-op."""
        if not pak_hash or pak_hash in self._revoked:
            return
        self._revoked.add(pak_hash)
        await db.notify.publish_revoked(self.tx, pak_hash)

    async def emit(self, event: events.Event) -> None:
        """Queue one delivery per matching enabled subscription; they exist only if the change
        commits (transactional outbox). Other brokers' workers hear of them on commit."""
        queued = await db.outbox.insert(self.tx, event, now=self.now)
        if queued and not self._deliveries:
            await db.notify.publish_webhooks_due(self.tx)
        self._deliveries += queued

    async def hint(self, hint: hints.Hint) -> None:
        """Tell the agents concerned on the channel, once this commits (on every broker)."""
        if hint in self._hints:
            return
        self._hints.append(hint)
        if self._origin is not None:
            await db.notify.publish_hint(self.tx, hints.encode_notice(self._origin, hint))

    def after_commit(
        self,
        *,
        changed: Callable[[UUID | None], None],
        forget_pak: Callable[[str], None],
        webhooks_due: asyncio.Event | None = None,
        hinted: Callable[[hints.Hint], None] | None = None,
    ) -> None:
        for pak_hash in self._revoked:
            forget_pak(pak_hash)
        for agent_id in [None] if None in self._changed else self._changed:
            changed(agent_id)
        if self._deliveries and webhooks_due is not None:
            webhooks_due.set()
        if hinted is not None:
            for hint in self._hints:
                hinted(hint)


@asynccontextmanager
async def unit_of_work(
    database: db.Database,
    *,
    caller: access.Caller | None,
    now: datetime,
    changed: Callable[[UUID | None], None],
    forget_pak: Callable[[str], None],
    webhooks_due: asyncio.Event | None = None,
    origin: UUID | None = None,
    hinted: Callable[[hints.Hint], None] | None = None,
) -> AsyncIterator[Work]:
    """``changed``: what this process forgets of each agent whose target state changed (its
    trusted ETag, its channel's standing), the same as when another broker changed it;
    ``origin``: this broker's instance id, announcing hints to the others (None: hints stay in
    this process); ``hinted``: delivers hints to this broker's own connections."""
    async with database.transaction() as tx:
        work = Work(tx, caller=caller, now=now, origin=origin)
        yield work
    work.after_commit(
        changed=changed, forget_pak=forget_pak, webhooks_due=webhooks_due, hinted=hinted
    )
