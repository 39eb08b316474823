"""Generator use cases: the identities that own stacks and templates."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, errors, paks
from brokkr.broker.services import stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire


def _protect_admin_generator(generator: wire.Generator, action: str) -> None:
    """The bootstrap ``admin-generator`` owns admin-created stacks and has no PAK by design."""
    if generator.name == db.admins.ADMIN_GENERATOR_NAME:
        raise errors.Forbidden(
            f"the admin-generator cannot be {action}", code="admin_generator_protected"
        )


def _not_found(generator_id: UUID) -> errors.NotFound:
    return errors.NotFound(
        "generator not found", code="generator_not_found", details={"id": str(generator_id)}
    )


async def create(
    ctx: Context, *, caller: access.Caller, new: wire.NewGenerator
) -> wire.CreateGeneratorResponse:
    access.require_admin(caller)
    pak = paks.generate()
    async with ctx.work(caller) as w:
        generator = await db.generators.insert(
            w.tx,
            generator_id=uuid.uuid4(),
            name=new.name,
            description=new.description,
            pak_hash=pak.hash,
            key_id=pak.key_id,
            now=w.now,
        )
        details = {"name": generator.name, "pak_key_id": pak.key_id}
        await w.audit("generator.created", "generator", generator.id, details)
    return wire.CreateGeneratorResponse(generator=generator, pak=pak.plaintext)


async def list_all(ctx: Context, *, caller: access.Caller) -> list[wire.Generator]:
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        return await db.generators.list_live(tx)


async def get(ctx: Context, *, caller: access.Caller, generator_id: UUID) -> wire.Generator:
    access.require_admin_or_generator(caller, generator_id)
    async with ctx.database.read() as tx:
        generator = await db.generators.get(tx, generator_id)
    if generator is None:
        raise _not_found(generator_id)
    return generator


def _changes(current: wire.Generator, update: wire.GeneratorUpdate) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field in ("name", "description", "is_active"):
        value = getattr(update, field)
        if value is not msgspec.UNSET and value != getattr(current, field):
            changes[field] = value
    return changes


async def update(
    ctx: Context, *, caller: access.Caller, generator_id: UUID, update: wire.GeneratorUpdate
) -> wire.Generator:
    access.require_admin_or_generator(caller, generator_id)
    access.require_same_id(
        None if update.id is msgspec.UNSET else update.id, generator_id, field="id"
    )
    async with ctx.work(caller) as w:
        credential = await db.generators.get_credential(w.tx, generator_id, for_update=True)
        if credential is None:
            raise _not_found(generator_id)
        renamed = update.name is not msgspec.UNSET and update.name != credential.generator.name
        if renamed or update.is_active is False:
            _protect_admin_generator(credential.generator, "renamed or deactivated")
        changes = _changes(credential.generator, update)
        if "is_active" in changes and not caller.is_admin:
            raise errors.Forbidden(
                "only an admin may activate or deactivate a generator",
                code="generator_update_forbidden",
                details={"fields": ["is_active"]},
            )
        if not changes:
            return credential.generator
        generator = await db.generators.update(w.tx, generator_id, now=w.now, **changes)
        if generator is None:
            raise _not_found(generator_id)
        if changes.get("is_active") is False:
            await w.revoked(credential.pak_hash)
        await w.audit("generator.updated", "generator", generator_id, changes)
    return generator


async def delete(ctx: Context, *, caller: access.Caller, generator_id: UUID) -> None:
    """Soft-delete; deleting an already deleted generator changes nothing (D15)."""
    access.require_admin_or_generator(caller, generator_id)
    async with ctx.work(caller) as w:
        credential = await db.generators.get_credential(w.tx, generator_id, for_update=True)
        if credential is None:
            if await db.generators.exists_including_deleted(w.tx, generator_id):
                return
            raise _not_found(generator_id)
        _protect_admin_generator(credential.generator, "deleted")
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
        credential = await db.generators.get_credential(w.tx, generator_id, for_update=True)
        if credential is None:
            raise _not_found(generator_id)
        _protect_admin_generator(credential.generator, "given a PAK")
        generator = await db.generators.set_pak(
            w.tx, generator_id, pak_hash=pak.hash, key_id=pak.key_id, now=w.now
        )
        if generator is None:
            raise _not_found(generator_id)
        await w.revoked(credential.pak_hash)
        details = {"generator_name": generator.name, "pak_key_id": pak.key_id}
        await w.audit("pak.rotated", "generator", generator_id, details)
    return wire.CreateGeneratorResponse(generator=generator, pak=pak.plaintext)
