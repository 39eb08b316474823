"""Turn an ``Authorization`` header into the caller's identity, or a 401 that is audited."""

from __future__ import annotations

from typing import NoReturn

from brokkr.broker import db
from brokkr.broker.auth.cache import IdentityCache
from brokkr.broker.domain import access, errors, paks
from brokkr.broker.services import audit as audit_service
from brokkr.broker.services.context import Context


class Authenticator:
    def __init__(self, ctx: Context, cache: IdentityCache) -> None:
        self._ctx = ctx
        self.cache = cache

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
        return access.Caller(
            identity=identity, ip_address=ip_address, user_agent=user_agent, pak_hash=pak_hash
        )

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
