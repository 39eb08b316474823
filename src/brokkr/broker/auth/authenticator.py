"""Turn an ``Authorization`` header into the caller's identity, or a 401 that is audited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NoReturn
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.auth.cache import IdentityCache
from brokkr.broker.domain import access, errors, paks
from brokkr.broker.services import audit as audit_service
from brokkr.broker.services import generators as generators_service
from brokkr.broker.services.context import Context

# A generator's ``last_active_at`` is written at most this often, as agents' heartbeats are
# periodic: a busy CI pipeline must not turn every authenticated request into a write.
ACTIVITY_WRITE_INTERVAL_SECONDS = 60.0


class ActivityThrottle:
    """Which generators' activity is due to be written; one dict lookup on the hot path."""

    def __init__(
        self,
        interval: float = ACTIVITY_WRITE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._written: dict[UUID, float] = {}

    def due(self, generator_id: UUID) -> bool:
        now = self._clock()
        last = self._written.get(generator_id)
        if last is not None and now - last < self._interval:
            return False
        self._written[generator_id] = now
        return True

    def clear(self) -> None:
        self._written.clear()


class Authenticator:
    def __init__(self, ctx: Context, cache: IdentityCache) -> None:
        self._ctx = ctx
        self.cache = cache
        self.activity = ActivityThrottle()

    async def identify(
        self, header: str | None, *, ip_address: str | None, user_agent: str | None, path: str
    ) -> access.Caller:
        pak = paks.from_authorization(header)
        if pak is None:
            reason = "missing" if not header else "malformed"
            await self._fail(
                reason, key_id=None, ip_address=ip_address, user_agent=user_agent, path=path
            )
        pak_hash = paks.hash_key(pak)
        identity = self.cache.get(pak_hash)
        if identity is None:
            generation = self.cache.generation
            identity = await db.identities.find(self._ctx.database, pak_hash)
            if identity is None:
                await self._fail(
                    "unknown_or_revoked",
                    key_id=paks.key_id(pak),
                    ip_address=ip_address,
                    user_agent=user_agent,
                    path=path,
                )
            self.cache.put(pak_hash, identity, generation=generation)
        caller = access.Caller(
            identity=identity, ip_address=ip_address, user_agent=user_agent, pak_hash=pak_hash
        )
        if (
            identity.role is access.Role.GENERATOR
            and identity.id is not None
            and self.activity.due(identity.id)
        ):
            await generators_service.record_activity(self._ctx, caller=caller)
        return caller

    async def _fail(
        self,
        reason: str,
        *,
        key_id: str | None,
        ip_address: str | None,
        user_agent: str | None,
        path: str,
    ) -> NoReturn:
        await audit_service.record_auth_failure(
            self._ctx,
            reason=reason,
            key_id=key_id,
            ip_address=ip_address,
            user_agent=user_agent,
            path=path,
        )
        raise errors.PakRequired()
