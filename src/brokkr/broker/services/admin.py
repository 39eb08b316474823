"""The admin identity: first-start bootstrap (D5) and rotation by ``brokkr admin rotate-pak``."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from brokkr.broker import db, private_files
from brokkr.broker.domain import errors, paks
from brokkr.broker.services.context import Context

ADMIN_PAK_FILE = "admin.pak"


class Bootstrap(msgspec.Struct, frozen=True, kw_only=True):
    created: bool
    # Set only when the broker generated the key: the caller shows it once, then forgets it.
    generated_pak: str | None = None
    pak_file: Path | None = None


def write_pak_file(data_dir: Path, plaintext: str) -> Path:
    """Write the key readable by its owner only (0600), replacing any previous file."""
    private_files.ensure_dir(data_dir)
    path = data_dir / ADMIN_PAK_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, f"{plaintext}\n".encode())
    finally:
        os.close(descriptor)
    return path


async def bootstrap(ctx: Context, *, admin_pak: str, admin_pak_hash: str) -> Bootstrap:
    """Create the admin identity if the database has none. Exactly one of several brokers
    starting together does it: they serialise on a database lock (D5)."""
    async with ctx.work(None) as w:
        await db.locking.hold_for_transaction(w.tx, db.locking.BOOTSTRAP_LOCK)
        if await db.admins.current_hash(w.tx) is not None:
            return Bootstrap(created=False)
        generated: str | None = None
        pak_file: Path | None = None
        if admin_pak:
            pak_hash, key_id, source = (
                paks.hash_key(admin_pak),
                paks.key_id(admin_pak),
                "configured",
            )
        elif admin_pak_hash:
            pak_hash, key_id, source = admin_pak_hash.lower(), None, "configured_hash"
        else:
            pak = paks.generate()
            pak_hash, key_id, source, generated = pak.hash, pak.key_id, "generated", pak.plaintext
            # Written before the commit: if the commit succeeds, the key is already on disk.
            pak_file = write_pak_file(ctx.data_dir, pak.plaintext)
        await db.admins.insert(w.tx, pak_hash=pak_hash, key_id=key_id, now=w.now)
        await db.admins.ensure_admin_generator(w.tx, now=w.now)
        await w.audit("admin.bootstrapped", "pak", None, {"source": source, "pak_key_id": key_id})
    return Bootstrap(created=True, generated_pak=generated, pak_file=pak_file)


async def rotate_pak(ctx: Context) -> paks.Pak:
    """Replace the admin PAK; the old one stops working on every broker (D7). A database
    without the broker's schema is refused: rotating there would hand out a key no broker
    accepts."""
    if await db.schema_version.current(ctx.database) is None:
        raise errors.BrokerSchemaMissing()
    pak = paks.generate()
    async with ctx.work(None) as w:
        await db.locking.hold_for_transaction(w.tx, db.locking.BOOTSTRAP_LOCK)
        old_hash = await db.admins.current_hash(w.tx)
        if old_hash is None:
            await db.admins.insert(w.tx, pak_hash=pak.hash, key_id=pak.key_id, now=w.now)
            await db.admins.ensure_admin_generator(w.tx, now=w.now)
        else:
            await db.admins.replace_hash(w.tx, pak_hash=pak.hash, key_id=pak.key_id, now=w.now)
            await w.revoked(old_hash)
        await w.audit("pak.rotated", "pak", None, {"role": "admin", "pak_key_id": pak.key_id})
        if (ctx.data_dir / ADMIN_PAK_FILE).exists():
            write_pak_file(ctx.data_dir, pak.plaintext)
    return pak
