"""Generator use cases: the identities that own stacks and templates."""

from __future__ import annotations

from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, errors, names, paging, paks, updates
from brokkr.broker.services import stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire


def _protect_admin_generator(generator: wire.Generator, action: str) -> None:
    """The bootstrap ``admin-generator`` owns admin-created stacks and has no PAK by design."""
    if generator.name == db.admins.ADMIN_GENERATOR_NAME:
        raise errors.AdminGeneratorProtected(action)


def _refuse_look_alike(name: str) -> None:
    """D14: no generator may pass for the protected one in a listing or the audit trail."""
    if names.imitates(name, db.admins.ADMIN_GENERATOR_NAME):
        raise errors.GeneratorNameReserved(db.admins.ADMIN_GENERATOR_NAME)


async def create(
    ctx: Context, *, caller: access.Caller, new: wire.NewGenerator
) -> wire.CreateGeneratorResponse:
    access.require_admin(caller)
    _refuse_look_alike(new.name)
    pak = paks.generate()
    async with ctx.work(caller) as w:
        generator = await db.generators.insert(
            w.tx,
            name=new.name,
            description=new.description,
            pak_hash=pak.hash,
            key_id=pak.key_id,
            is_active=True,
            now=w.now,
        )
        details = {"name": generator.name, "pak_key_id": pak.key_id}
        await w.audit("generator.created", "generator", generator.id, details)
    return wire.CreateGeneratorResponse(generator=generator, pak=pak.plaintext)


async def list_all(
    ctx: Context, *, caller: access.Caller, limit: int, offset: int
) -> paging.Page[wire.Generator]:
    access.require_admin(caller)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        rows = await db.generators.list_live(tx, limit=limit + 1, offset=offset)
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


async def get(ctx: Context, *, caller: access.Caller, generator_id: UUID) -> wire.Generator:
    access.require_admin_or_generator(caller, generator_id)
    async with ctx.database.read() as tx:
        generator = await db.generators.get(tx, generator_id)
    if generator is None:
        raise errors.GeneratorNotFound(generator_id)
    return generator


async def update(
    ctx: Context, *, caller: access.Caller, generator_id: UUID, update: wire.GeneratorUpdate
) -> wire.Generator:
    access.require_admin_or_generator(caller, generator_id)
    access.require_same_id(update.id, generator_id, errors.IdMismatch)
    async with ctx.work(caller) as w:
        credential = await db.generators.get_credential(w.tx, generator_id)
        if credential is None:
            raise errors.GeneratorNotFound(generator_id)
        renamed = update.name is not msgspec.UNSET and update.name != credential.record.name
        if renamed or update.is_active is False:
            _protect_admin_generator(credential.record, "renamed or deactivated")
        if renamed and isinstance(update.name, str):
            _refuse_look_alike(update.name)
        changes = updates.changes(credential.record, update, ("name", "description", "is_active"))
        if "is_active" in changes and not caller.is_admin:
            raise errors.GeneratorUpdateForbidden()
        if not changes:
            return credential.record
        generator = await db.generators.update(w.tx, generator_id, now=w.now, **changes)
        if generator is None:
            raise errors.GeneratorNotFound(generator_id)
        if changes.get("is_active") is False:
            await w.revoked(credential.pak_hash)
        await w.audit("generator.updated", "generator", generator_id, changes)
    return generator


async def delete(ctx: Context, *, caller: access.Caller, generator_id: UUID) -> None:
    """Soft-delete; deleting an already deleted generator changes nothing (D15)."""
    access.require_admin_or_generator(caller, generator_id)
    async with ctx.work(caller) as w:
        credential = await db.generators.get_credential(w.tx, generator_id)
        if credential is None:
            if await db.generators.get_including_deleted(w.tx, generator_id) is not None:
                return
            raise errors.GeneratorNotFound(generator_id)
        _protect_admin_generator(credential.record, "deleted")
        await db.generators.soft_delete(w.tx, generator_id, now=w.now)
        # D13: the generator's stacks go with it, and the clusters hear about it.
        for stack_id in await db.stacks.live_ids_of_generator(w.tx, generator_id):
            stack = await db.stacks.get(w.tx, stack_id)
            if stack is not None:
                await stacks.retire(w, stack)
                details = {"name": stack.name, "cause": "generator.deleted"}
                await w.audit("stack.deleted", "stack", stack_id, details)
        await w.revoked(credential.pak_hash)
        await w.audit("generator.deleted", "generator", generator_id)


async def rotate_pak(
    ctx: Context, *, caller: access.Caller, generator_id: UUID
) -> wire.CreateGeneratorResponse:
    access.require_admin_or_generator(caller, generator_id)
    pak = paks.generate()
    async with ctx.work(caller) as w:
        credential = await db.generators.get_credential(w.tx, generator_id)
        if credential is None:
            raise errors.GeneratorNotFound(generator_id)
        _protect_admin_generator(credential.record, "given a PAK")
        if caller.is_generator(generator_id):
            access.require_key_still_held(caller, credential.pak_hash)
        generator = await db.generators.update(
            w.tx, generator_id, now=w.now, pak_hash=pak.hash, key_id=pak.key_id
        )
        if generator is None:
            raise errors.GeneratorNotFound(generator_id)
        await w.revoked(credential.pak_hash)
        details = {"generator_name": generator.name, "pak_key_id": pak.key_id}
        await w.audit("pak.rotated", "generator", generator_id, details)
    return wire.CreateGeneratorResponse(generator=generator, pak=pak.plaintext)


async def record_activity(ctx: Context, *, caller: access.Caller) -> None:
    """The calling generator used its PAK now (``last_active_at``). Not audited: like agents'
    heartbeats, it would fill the trail; the auth layer calls it at most once a minute."""
    if caller.identity.id is None:
        return
    async with ctx.work(caller) as w:
        await db.generators.record_activity(w.tx, caller.identity.id, now=w.now)
