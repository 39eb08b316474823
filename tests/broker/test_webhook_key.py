"""The webhook encryption key (D10): configured or generated once into the data dir (0600), the
same after a restart, never logged (only its fingerprint), and a key that cannot read the
stored subscriptions stops the broker at start, naming the setting, on both databases."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import msgspec
import pytest

from brokkr.broker import main
from brokkr.broker.app import create_app
from brokkr.broker.domain import secrets
from brokkr.broker.services import webhook_key
from brokkr.broker.services.context import Context
from brokkr.broker.settings import RESTART_REQUIRED, Settings, compare, load
from tests.broker.conftest import Api

URL = "https://hooks.example/keep-me-readable"
KEY = "ab" * 32


def in_dir(data_dir: Path, **broker: str) -> Settings:
    environ = {"BROKKR__DATA_DIR": str(data_dir)}
    environ.update({f"BROKKR__BROKER__{key.upper()}": value for key, value in broker.items()})
    return load(environ=environ)


def test_a_key_is_generated_once_into_the_data_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = in_dir(tmp_path / "data")
    with caplog.at_level(logging.INFO):
        first = webhook_key.load_cipher(settings)
    path = tmp_path / "data" / webhook_key.KEY_FILE
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.fingerprint(bytes.fromhex(text.strip())) == first.fingerprint
    assert webhook_key.load_cipher(settings).fingerprint == first.fingerprint
    assert [p.name for p in path.parent.iterdir()] == [webhook_key.KEY_FILE]
    assert text.strip() not in caplog.text and first.fingerprint in caplog.text


def test_a_configured_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    cipher = webhook_key.load_cipher(in_dir(tmp_path, webhook_encryption_key=KEY))
    assert cipher.fingerprint == secrets.fingerprint(bytes.fromhex(KEY))
    assert not (tmp_path / webhook_key.KEY_FILE).exists()


def test_a_damaged_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / webhook_key.KEY_FILE).write_text("not a key\n")
    with pytest.raises(webhook_key.WebhookKeyUnusable, match="webhook.key"):
        webhook_key.load_cipher(in_dir(tmp_path))


def test_a_malformed_configured_key_is_a_settings_error() -> None:
    with pytest.raises(Exception, match="broker.webhook_encryption_key"):
        load(environ={"BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY": "abc"})


def test_the_key_is_restart_only_and_never_shown() -> None:
    assert "broker.webhook_encryption_key" in RESTART_REQUIRED
    changes = compare(Settings(), in_dir(Path(), webhook_encryption_key=KEY))
    [change] = [c for c in changes if c.key == "broker.webhook_encryption_key"]
    assert KEY not in change.new and change.needs_restart


async def subscribe(api: Api) -> None:
    body = {"name": "n", "url": URL, "event_types": ["*"], "target_labels": ["parked"]}
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.admin)
    assert response.status_code == 201, response.text


async def test_a_restart_with_the_same_data_dir_reads_the_stored_secrets(api: Api) -> None:
    await subscribe(api)
    app = create_app(api.broker.settings)
    await app.state.runtime.start()
    try:
        ctx: Context = app.state.ctx
        await webhook_key.check(ctx)
        running: Context = api.broker.app.state.ctx
        assert ctx.secrets.cipher.fingerprint == running.secrets.cipher.fingerprint
    finally:
        await app.state.runtime.stop()


async def test_a_wrong_key_stops_the_start_naming_the_setting(api: Api) -> None:
    await subscribe(api)
    settings = api.broker.settings
    wrong = msgspec.structs.replace(
        settings, broker=msgspec.structs.replace(settings.broker, webhook_encryption_key=KEY)
    )
    app = create_app(wrong)
    try:
        with pytest.raises(webhook_key.WebhookKeyUnusable) as raised:
            await app.state.runtime.start()
    finally:
        await app.state.ctx.database.dispose()
    assert "broker.webhook_encryption_key" in str(raised.value)
    assert KEY not in str(raised.value)
    # `brokkr serve` says it in one line before it listens.
    with pytest.raises(main.StartupError, match="broker.webhook_encryption_key"):
        await asyncio.to_thread(main.prepare_database, wrong)


async def test_without_subscriptions_any_key_starts(api: Api) -> None:
    settings = api.broker.settings
    other = msgspec.structs.replace(
        settings, broker=msgspec.structs.replace(settings.broker, webhook_encryption_key=KEY)
    )
    await asyncio.to_thread(main.prepare_database, other)
