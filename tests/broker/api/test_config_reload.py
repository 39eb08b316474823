"""POST /api/v1/admin/config/reload (D20, issue #9 finding 7), on SQLite and PostgreSQL.

Covers an admin reload that re-reads the TOML file and the environment: hot keys (CORS, auth
cache TTL, audit retention) are in force at once (a CORS pre-flight from the new origin passes),
the answer lists them as ``ConfigReloadResponse`` changes, a restart-only key (database
pool size) is named in ``message`` and keeps its running value, and one ``config.reloaded``
audit row is written; a file that fails validation answers 422 ``invalid_configuration`` naming
the key and changes nothing; non-admins get 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brokkr.broker.settings import LiveSettings, Source
from tests.broker.conftest import ADMIN_PAK, Api, assert_error, auth

RELOAD = "/api/v1/admin/config/reload"
ORIGIN = "https://ui.example"


@contextmanager
def reading(api: Api, config: Path) -> Iterator[LiveSettings]:
    """Point the running broker's reloads at ``config`` plus its own environment."""
    live: LiveSettings = api.broker.app.state.ctx.settings
    running, source = live.current, live.source
    environ = {
        "BROKKR__DATA_DIR": running.data_dir,
        "BROKKR__BROKER__ADMIN_PAK": ADMIN_PAK,
        "BROKKR__DATABASE__URL": running.database.url,
    }
    live.source = Source(config_file=config, environ=environ)
    try:
        yield live
    finally:
        live.source = source
        live.swap(running)


async def preflight(api: Api) -> int:
    response = await api.client.options(
        "/api/v1/agents",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    allowed = response.headers.get("access-control-allow-origin") == ORIGIN
    return response.status_code if allowed else -response.status_code


async def test_reload_applies_hot_settings_and_reports_restart_only_ones(
    api: Api, tmp_path: Path
) -> None:
    config = tmp_path / "brokkr.toml"
    config.write_text(
        f'[cors]\nallowed_origins = ["{ORIGIN}"]\n'
        "[auth]\ncache_ttl_seconds = 0\n"
        "[broker]\naudit_log_retention_days = 30\n"
        "[database]\npool_size = 7\n",
        encoding="utf-8",
    )
    assert await preflight(api) < 0
    with reading(api, config) as live:
        response = await api.client.post(RELOAD, headers=api.admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        assert body["reloaded_at"].endswith("Z")
        changes = {change["key"]: change for change in body["changes"]}
        assert set(changes) == {
            "cors.allowed_origins",
            "auth.cache_ttl_seconds",
            "broker.audit_log_retention_days",
        }
        assert changes["cors.allowed_origins"]["new_value"] == f'["{ORIGIN}"]'
        assert changes["broker.audit_log_retention_days"] == {
            "key": "broker.audit_log_retention_days",
            "old_value": "90",
            "new_value": "30",
        }
        assert body["message"] == (
            "3 setting(s) updated; not applied until a restart: database.pool_size"
        )

        assert live.current.broker.audit_log_retention_days == 30
        assert live.current.database.pool_size == api.broker.settings.database.pool_size
        assert api.broker.app.state.authenticator.cache.ttl == 0
        assert await preflight(api) > 0

        logs = await api.audit(action="config.reloaded")
        assert len(logs) == 1
        assert logs[0]["actor_type"] == "admin"
        assert logs[0]["resource_type"] == "config"
        assert logs[0]["details"] == {
            "changes": sorted(changes, key=list(changes).index),
            "restart_required": ["database.pool_size"],
        }

        again = await api.client.post(RELOAD, headers=api.admin)
        assert again.json()["changes"] == []
    assert await preflight(api) < 0


async def test_an_invalid_file_changes_nothing_and_names_the_key(api: Api, tmp_path: Path) -> None:
    config = tmp_path / "brokkr.toml"
    config.write_text('[cors]\nallowed_origins = ["https://x"]\n[log]\nlevel = "loud"\n')
    with reading(api, config) as live:
        before = live.current
        response = await api.client.post(RELOAD, headers=api.admin)
        body = assert_error(response, 422, "invalid_configuration")
        assert body["details"] == {"keys": ["log.level"]}
        assert live.current is before

        config.write_text("[nonsense]\nkey = 1\n")
        response = await api.client.post(RELOAD, headers=api.admin)
        assert assert_error(response, 422, "invalid_configuration")["details"] == {
            "keys": ["nonsense"]
        }
        assert live.current is before
    assert await api.audit(action="config.reloaded") == []


async def test_only_an_admin_may_reload(api: Api) -> None:
    _, pak = await api.create_generator()
    assert_error(await api.client.post(RELOAD, headers=auth(pak)), 403, "admin_required")
    assert_error(await api.client.post(RELOAD), 401)
