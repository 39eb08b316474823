"""The key encrypting webhook secrets at rest (D10): configured, or generated once and kept.

``broker.webhook_encryption_key`` wins; without it the key is ``<data_dir>/webhook.key`` (64 hex
characters, 0600), created on first start, so a restart with the same data dir reads every
stored subscription. A key that cannot read the stored subscriptions stops the start, naming
the setting: failing later, at each delivery, would lose events quietly. Only the key's
fingerprint is ever logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from brokkr.broker import db, private_files
from brokkr.broker.domain import secrets
from brokkr.broker.services.context import Context
from brokkr.broker.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "webhook.key"
SETTING = "broker.webhook_encryption_key"


class WebhookKeyUnusable(Exception):
    """The webhook encryption key is unusable; the message names the setting or file."""


def load_cipher(settings: Settings) -> secrets.Cipher:
    """The cipher of the configured key, else of the data dir's key file (created if missing)."""
    configured = settings.broker.webhook_encryption_key
    if configured:
        cipher = secrets.Cipher(secrets.parse_key(configured))
        source = SETTING
    else:
        path = settings.data_path / KEY_FILE
        cipher = secrets.Cipher(_read_or_create(path))
        source = str(path)
    log.info("webhook encryption key from %s (fingerprint %s)", source, cipher.fingerprint)
    return cipher


def _read_or_create(path: Path) -> bytes:
    if not path.exists():
        _create(path)
    private_files.restrict(path)
    try:
        return secrets.parse_key(path.read_text(encoding="ascii", errors="replace"))
    except secrets.BadKey as exc:
        raise WebhookKeyUnusable(
            f"{path} does not hold a webhook encryption key (64 hexadecimal characters); "
            f"restore it or set {SETTING}"
        ) from exc


def _create(path: Path) -> None:
    """Write a new key so that no broker ever reads half a file: written aside, then linked
    into place, which fails if another broker sharing the data dir got there first."""
    private_files.ensure_dir(path.parent)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, private_files.FILE_MODE)
    try:
        os.fchmod(descriptor, private_files.FILE_MODE)
        os.write(descriptor, f"{secrets.generate_key().hex()}\n".encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    finally:
        aside.unlink()
    log.warning(
        "generated a webhook encryption key in %s: keep it with the database (losing it makes "
        "stored webhook subscriptions unreadable); brokers sharing a database need the same "
        "key (%s)",
        path,
        SETTING,
    )


async def check(ctx: Context) -> None:
    """Refuse a key that cannot read the newest stored subscription (any other key wrote it)."""
    async with ctx.database.read() as tx:
        newest = await db.webhooks.newest(tx)
    if newest is None:
        return
    try:
        ctx.secrets.decrypt(newest.url_encrypted)
    except secrets.SecretUnreadable as exc:
        raise WebhookKeyUnusable(
            f"the webhook encryption key (fingerprint {ctx.secrets.cipher.fingerprint}) cannot "
            f"decrypt the stored webhook subscriptions ({exc}); set {SETTING} to the key they "
            f"were written with (or restore {KEY_FILE} in the data dir)"
        ) from None


async def load(ctx: Context, settings: Settings) -> None:
    """Key ``ctx.secrets`` and check the key against the stored subscriptions."""
    try:
        ctx.secrets.use(load_cipher(settings))
    except secrets.BadKey as exc:
        raise WebhookKeyUnusable(f"{SETTING}: {exc}") from None
    await check(ctx)
