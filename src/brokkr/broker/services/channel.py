"""The agent channel's hub: this broker's connected agents, the hints pushed to them, and the
closing of connections whose agent lost its right to one.

Hints (``domain.hints``) arrive right after this broker's commits (``hinted``) and from the
other brokers through the change listener (``noticed``). One task delivers them in order: it
resolves which connected agents a hint concerns and the frame's body with one read per hint,
and only when some agent is connected here at all. Revocations (D7) close the connections of
the revoked PAK at once; a changed agent (deactivated, deleted) is re-checked against the
database by a second task, in batches. The read loop of a connection is ``agent_channel``'s.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import hints
from brokkr.broker.services.downlink import Downlink
from brokkr.common import wire
from brokkr.common.wire import channel

if TYPE_CHECKING:
    from brokkr.broker.services.context import Context

log = logging.getLogger(__name__)

# Close codes: 1001 the broker stops; 4001 a newer connection of the same agent took over;
# 4401 the PAK was revoked; 4403 the agent was deleted or is no longer active.
GOING_AWAY = 1001
REPLACED = 4001
REVOKED = 4401
NOT_ALLOWED = 4403
# Hints waiting for delivery beyond this are dropped (agents still poll); identical ones coalesce.
_MAX_PENDING_HINTS = 10_000
# Standing checks read this many agents per query.
_CHECK_BATCH = 500


class ChannelMetrics(Protocol):
    def ws_connections(self, count: int) -> None: ...

    def ws_message(self, direction: str, type_: str) -> None: ...

    def ws_dropped(self, reason: str) -> None: ...

    def ws_live_subscribers(self, count: int) -> None: ...


class _NoMetrics:
    def ws_connections(self, count: int) -> None:
        pass

    def ws_message(self, direction: str, type_: str) -> None:
        pass

    def ws_dropped(self, reason: str) -> None:
        pass

    def ws_live_subscribers(self, count: int) -> None:
        pass


class Connection:
    """One agent's open channel: who it is, its queue out, and what the hub tells its reader."""

    def __init__(
        self, *, agent_id: UUID, pak_hash: str | None, connected_since: datetime, downlink: Downlink
    ) -> None:
        self.agent_id = agent_id
        self.pak_hash = pak_hash
        self.connected_since = connected_since
        self.downlink = downlink
        self.messages_in = 0
        # Set when the agent's associations may have changed: its reader reloads them.
        self.stale = False


class Hub:
    def __init__(self, metrics: ChannelMetrics | None = None) -> None:
        self.metrics: ChannelMetrics = metrics or _NoMetrics()
        self._ctx: Context | None = None
        self._connections: dict[UUID, Connection] = {}
        self._hints: dict[hints.Hint, None] = {}
        self._hints_due = asyncio.Event()
        self._checks: set[UUID] = set()
        self._check_all = False
        self._checks_due = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self, ctx: Context) -> None:
        self._ctx = ctx
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._deliver_hints(), name="channel-hints"),
            asyncio.create_task(self._check_standings(), name="channel-standings"),
        ]

    async def stop(self) -> None:
        """Close every connection (1001) and stop the hub's tasks."""
        for connection in list(self._connections.values()):
            connection.downlink.close(GOING_AWAY, "broker shutting down")
        # Not cancelled: a task cancelled inside a SQLite read leaks its connection; each
        # returns once its current delivery or check is done.
        self._stopping = True
        self._hints_due.set()
        self._checks_due.set()
        await asyncio.gather(*self._tasks)
        self._tasks = []

    # --- connections -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._connections)

    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    def register(self, connection: Connection) -> None:
        """A newer connection of the same agent replaces (closes) the older one."""
        previous = self._connections.get(connection.agent_id)
        self._connections[connection.agent_id] = connection
        if previous is not None:
            previous.downlink.close(REPLACED, "replaced by a newer connection of this agent")
        self.metrics.ws_connections(len(self._connections))

    def unregister(self, connection: Connection) -> None:
        if self._connections.get(connection.agent_id) is connection:
            del self._connections[connection.agent_id]
        self.metrics.ws_connections(len(self._connections))

    # --- closing (D7) ----------------------------------------------------------------------

    def revoked(self, pak_hash: str | None) -> None:
        """A PAK was revoked (``None``: news may have been missed, re-check every connection)."""
        if pak_hash is None:
            self._check_all = bool(self._connections)
            self._checks_due.set()
            return
        for connection in list(self._connections.values()):
            if connection.pak_hash == pak_hash:
                connection.downlink.close(REVOKED, "PAK revoked")

    def state_changed(self, agent_id: UUID | None) -> None:
        """An agent's target state changed: its associations (and, for a deactivation or a
        deletion, its right to a connection) are re-read. ``None`` (any agent, every new
        deployment object) changes no association of its own: readers refresh on their own."""
        connection = self._connections.get(agent_id) if agent_id is not None else None
        if connection is None:
            return
        connection.stale = True
        self._checks.add(connection.agent_id)
        self._checks_due.set()

    async def _check_standings(self) -> None:
        while True:
            await self._checks_due.wait()
            self._checks_due.clear()
            if self._stopping:
                return
            if self._check_all:
                agent_ids = list(self._connections)
            else:
                agent_ids = [agent_id for agent_id in self._checks if agent_id in self._connections]
            self._checks.clear()
            self._check_all = False
            for start in range(0, len(agent_ids), _CHECK_BATCH):
                try:
                    await self._check_batch(agent_ids[start : start + _CHECK_BATCH])
                except Exception:
                    log.exception("agent channel: checking connected agents failed")

    async def _check_batch(self, agent_ids: list[UUID]) -> None:
        assert self._ctx is not None  # noqa: S101 - started before any connection
        async with self._ctx.database.read() as tx:
            standings = await db.agents.standings(tx, agent_ids)
        for agent_id in agent_ids:
            connection = self._connections.get(agent_id)
            if connection is None:
                continue
            standing = standings.get(agent_id)
            if standing is None:
                connection.downlink.close(NOT_ALLOWED, "agent deleted")
            elif standing.pak_hash != connection.pak_hash:
                connection.downlink.close(REVOKED, "PAK revoked")
            elif standing.status != "ACTIVE":
                connection.downlink.close(NOT_ALLOWED, "agent is not active")

    # --- hints -----------------------------------------------------------------------------

    def hinted(self, hint: hints.Hint) -> None:
        """A committed hint (this broker's own, right after its commit): deliver it to the
        concerned agents connected here."""
        if not self._connections or hint in self._hints:
            return
        if len(self._hints) >= _MAX_PENDING_HINTS:
            self.metrics.ws_dropped("hint_backlog")
            return
        self._hints[hint] = None
        self._hints_due.set()

    def noticed(self, payload: str) -> None:
        """An encoded hint notice from the change listener (any broker's, this one's echo
        too): deliver it unless this broker announced it."""
        if not self._connections or self._ctx is None:
            return
        notice = hints.decode_notice(payload)
        if notice is not None and notice.origin != self._ctx.instance_id:
            self.hinted(notice.hint)

    async def _deliver_hints(self) -> None:
        while True:
            await self._hints_due.wait()
            self._hints_due.clear()
            while self._hints and not self._stopping:
                hint = next(iter(self._hints))
                del self._hints[hint]
                if not self._connections:
                    continue
                try:
                    await self._deliver(hint)
                except Exception:
                    log.exception("agent channel: delivering a %s hint failed", hint.kind)
            if self._stopping:
                return

    async def _deliver(self, hint: hints.Hint) -> None:
        if hint.kind == channel.TARGET_CHANGED:
            self._deliver_target_changed(hint)
        elif hint.kind == channel.STACK_CHANGED:
            await self._deliver_stack_changed(hint)
        else:
            await self._deliver_work_order(hint)

    def _deliver_target_changed(self, hint: hints.Hint) -> None:
        # The hint carries the whole body: no read at all.
        if hint.agent_id is None or hint.stack_id is None:
            return
        connection = self._connections.get(hint.agent_id)
        if connection is None:
            return
        body = channel.TargetChangedBody(
            id=hint.ref, agent_id=hint.agent_id, stack_id=hint.stack_id
        )
        connection.stale = True
        self._push(connection, channel.TARGET_CHANGED, hint.ref, channel.frame(hint.kind, body))

    async def _deliver_stack_changed(self, hint: hints.Hint) -> None:
        assert self._ctx is not None  # noqa: S101 - hints are delivered only once started
        async with self._ctx.database.read() as tx:
            stack = await db.stacks.get_including_deleted(tx, hint.ref)
            reached = [] if hint.everyone else await db.targeting.associated_agents(tx, hint.ref)
        if stack is None:
            return
        concerned = self._connected(set(reached) | set(hint.agents), everyone=hint.everyone)
        text = channel.frame(channel.STACK_CHANGED, stack)
        for connection in concerned:
            connection.stale = True
            self._push(connection, channel.STACK_CHANGED, hint.ref, text)

    async def _deliver_work_order(self, hint: hints.Hint) -> None:
        assert self._ctx is not None  # noqa: S101 - hints are delivered only once started
        async with self._ctx.database.read() as tx:
            order: wire.WorkOrder | None = await db.work_orders.get(tx, hint.ref)
            reached = set() if hint.everyone else await db.work_orders.reached_agents(tx, hint.ref)
        if order is None:
            return
        text = channel.frame(channel.WORK_ORDER, order)
        for connection in self._connected(reached | set(hint.agents), everyone=hint.everyone):
            self._push(connection, channel.WORK_ORDER, hint.ref, text)

    def _connected(self, agent_ids: set[UUID], *, everyone: bool) -> list[Connection]:
        if everyone:
            return list(self._connections.values())
        found = (self._connections.get(agent_id) for agent_id in agent_ids)
        return [connection for connection in found if connection is not None]

    def _push(self, connection: Connection, type_: str, key: UUID, text: bytes) -> None:
        connection.downlink.hint(type_, key, text.decode())

    # --- the admin's view ------------------------------------------------------------------

    def snapshot(self, live_subscribers: int) -> wire.WsConnectionsResponse:
        self.metrics.ws_live_subscribers(live_subscribers)
        connections = [
            wire.WsConnectionInfo(
                agent_id=connection.agent_id,
                connected_since=connection.connected_since,
                messages_in=connection.messages_in,
                messages_out=connection.downlink.messages_out,
            )
            for connection in sorted(self._connections.values(), key=lambda c: c.connected_since)
        ]
        return wire.WsConnectionsResponse(
            connected_agents=len(connections),
            connections=connections,
            live_subscribers=live_subscribers,
        )
