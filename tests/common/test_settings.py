"""Broker configuration loading (D20).

Covers the precedence defaults < TOML file (``--config`` / ``BROKKR_CONFIG_FILE``) <
``BROKKR__SECTION__KEY`` environment; unknown keys and malformed values failing with a message
that names the dotted key; list values from the environment (comma-separated and JSON); the
agent's ``BROKKR__AGENT__*`` variables being ignored by the broker; the database URL mapping
(embedded SQLite, PostgreSQL aliases, other schemes rejected); and the CLI exiting 2 with the
key named on a bad configuration.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brokkr.broker.domain import paks
from brokkr.broker.settings import Settings, load
from brokkr.cli.main import app
from brokkr.common.settings import SettingsError

PAK = paks.generate().plaintext


def write_toml(tmp_path: Path, text: str, name: str = "brokkr.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- precedence ---------------------------------------------------------------------------------


def test_defaults_apply_when_nothing_is_configured() -> None:
    settings = load(environ={})
    assert settings == Settings()
    assert settings.broker.host == "0.0.0.0"  # noqa: S104 - the documented default
    assert settings.broker.port == 3000
    assert settings.data_dir == "./.brokkr"
    assert settings.auth.cache_ttl_seconds == 5.0
    assert settings.log.level == "info" and settings.log.format == "text"
    assert settings.cors.allowed_origins == ["http://localhost:3001"]


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        """
        data_dir = "/srv/brokkr"
        [broker]
        host = "127.0.0.1"
        port = 4000
        [log]
        level = "debug"
        """,
    )
    settings = load(
        config_file=config,
        environ={"BROKKR__BROKER__PORT": "5000", "BROKKR__DATA_DIR": "/var/brokkr"},
    )
    assert settings.broker.port == 5000  # environment wins over the file
    assert settings.data_dir == "/var/brokkr"
    assert settings.broker.host == "127.0.0.1"  # the file wins over the default
    assert settings.log.level == "debug"
    assert settings.log.format == "text"  # untouched default
    assert settings.auth.cache_ttl_seconds == 5.0


def test_config_file_can_be_named_by_environment_variable(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[broker]\nport = 4100\n")
    settings = load(environ={"BROKKR_CONFIG_FILE": str(config)})
    assert settings.broker.port == 4100


def test_explicit_config_path_wins_over_environment_variable_path(tmp_path: Path) -> None:
    named_by_env = write_toml(tmp_path, "[broker]\nport = 4100\n", "env.toml")
    explicit = write_toml(tmp_path, "[broker]\nport = 4200\n", "explicit.toml")
    settings = load(config_file=explicit, environ={"BROKKR_CONFIG_FILE": str(named_by_env)})
    assert settings.broker.port == 4200


def test_environment_values_are_converted_to_field_types() -> None:
    settings = load(
        environ={
            "BROKKR__BROKER__PORT": "8080",
            "BROKKR__AUTH__CACHE_TTL_SECONDS": "0",
            "BROKKR__DATABASE__POOL_SIZE": "7",
        }
    )
    assert settings.broker.port == 8080
    assert settings.auth.cache_ttl_seconds == 0.0
    assert settings.database.pool_size == 7


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load(config_file=tmp_path / "absent.toml", environ={})


def test_invalid_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[broker\nport = 1\n")
    with pytest.raises(SettingsError, match="not valid TOML") as raised:
        load(config_file=config, environ={})
    assert str(config) in str(raised.value)


# --- unknown keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[broker]\nnope = 1\n", "broker.nope"),
        ("nope = 1\n", "nope"),
        ("[nope]\nx = 1\n", "nope"),
        ("[database]\nurll = 'postgresql://x/y'\n", "database.urll"),
    ],
)
def test_unknown_key_in_file_is_rejected_by_its_dotted_name(
    tmp_path: Path, text: str, key: str
) -> None:
    config = write_toml(tmp_path, text)
    with pytest.raises(SettingsError) as raised:
        load(config_file=config, environ={})
    assert key in str(raised.value)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("BROKKR__BROKER__NOPE", "broker.nope"),
        ("BROKKR__NOPE", "nope"),
        ("BROKKR__LOG__COLOUR", "log.colour"),
        ("BROKKR__BROKER__PORT__EXTRA", "broker.port.extra"),
    ],
)
def test_unknown_environment_variable_is_rejected_by_its_dotted_name(name: str, key: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load(environ={name: "1"})
    assert key in str(raised.value)


def test_a_section_given_as_a_scalar_is_rejected(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'broker = "x"\n')
    with pytest.raises(SettingsError, match="broker"):
        load(config_file=config, environ={})


def test_unrelated_environment_variables_are_ignored() -> None:
    settings = load(environ={"PATH": "/bin", "BROKKR_SOMETHING": "x", "HOME": "/root"})
    assert settings == Settings()


# --- malformed values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"BROKKR__BROKER__PORT": "abc"}, "broker.port"),
        ({"BROKKR__BROKER__PORT": "70000"}, "broker.port"),
        ({"BROKKR__BROKER__PORT": "0"}, "broker.port"),
        ({"BROKKR__LOG__LEVEL": "loud"}, "log.level"),
        ({"BROKKR__LOG__FORMAT": "xml"}, "log.format"),
        ({"BROKKR__AUTH__CACHE_TTL_SECONDS": "-1"}, "auth.cache_ttl_seconds"),
        ({"BROKKR__DATABASE__POOL_SIZE": "0"}, "database.pool_size"),
        ({"BROKKR__BROKER__ADMIN_PAK": "not-a-pak"}, "broker.admin_pak"),
        ({"BROKKR__BROKER__ADMIN_PAK": PAK + "x" * 10}, "broker.admin_pak"),
        ({"BROKKR__BROKER__ADMIN_PAK_HASH": "abc"}, "broker.admin_pak_hash"),
        ({"BROKKR__BROKER__ADMIN_PAK_HASH": "g" * 64}, "broker.admin_pak_hash"),
        (
            {
                "BROKKR__BROKER__ADMIN_PAK": PAK,
                "BROKKR__BROKER__ADMIN_PAK_HASH": hashlib.sha256(PAK.encode()).hexdigest(),
            },
            "broker.admin_pak_hash",
        ),
        ({"BROKKR__DATABASE__URL": "mysql://db/brokkr"}, "database.url"),
    ],
)
def test_malformed_value_is_rejected_naming_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load(environ=environ)
    assert key in str(raised.value)


def test_malformed_value_in_file_is_rejected_naming_the_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[broker]\nport = "abc"\n')
    with pytest.raises(SettingsError, match=r"broker\.port"):
        load(config_file=config, environ={})


def test_both_admin_pak_and_hash_are_rejected_even_across_layers(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'[broker]\nadmin_pak = "{PAK}"\n')
    with pytest.raises(SettingsError, match=r"broker\.admin_pak"):
        load(config_file=config, environ={"BROKKR__BROKER__ADMIN_PAK_HASH": "a" * 64})


def test_valid_admin_pak_and_hash_are_accepted() -> None:
    assert load(environ={"BROKKR__BROKER__ADMIN_PAK": PAK}).broker.admin_pak == PAK
    digest = hashlib.sha256(PAK.encode()).hexdigest().upper()
    assert load(environ={"BROKKR__BROKER__ADMIN_PAK_HASH": digest}).broker.admin_pak_hash == digest


# --- lists --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ("https://a.example", ["https://a.example"]),
        ('["https://a.example", "https://b.example"]', ["https://a.example", "https://b.example"]),
        ('  ["x,y"]  ', ["x,y"]),
        ("a,,b,", ["a", "b"]),
        ("", []),
    ],
)
def test_list_values_from_environment_accept_commas_and_json(raw: str, expected: list[str]) -> None:
    settings = load(environ={"BROKKR__CORS__ALLOWED_ORIGINS": raw})
    assert settings.cors.allowed_origins == expected


def test_list_values_from_file_are_toml_arrays(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[cors]\nallowed_methods = ["GET", "POST"]\n')
    assert load(config_file=config, environ={}).cors.allowed_methods == ["GET", "POST"]


def test_malformed_json_list_is_rejected_naming_the_key() -> None:
    with pytest.raises(SettingsError) as raised:
        load(environ={"BROKKR__CORS__ALLOWED_ORIGINS": '["https://a.example"'})
    assert "cors.allowed_origins" in str(raised.value)


# --- foreign sections ---------------------------------------------------------------------------


def test_agent_variables_are_ignored_by_the_broker() -> None:
    settings = load(
        environ={
            "BROKKR__AGENT__BROKER_URL": "http://broker:3000",
            "BROKKR__AGENT__PAK": PAK,
            "BROKKR__AGENT__DEEP__NESTED": "x",
            "BROKKR__BROKER__PORT": "3100",
        }
    )
    assert settings.broker.port == 3100
    assert settings == Settings(broker=settings.broker)


def test_agent_section_in_shared_file_is_ignored_by_the_broker(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[agent]\nbroker_url = "http://b"\n[broker]\nport = 3200\n')
    assert load(config_file=config, environ={}).broker.port == 3200


# --- database URL -------------------------------------------------------------------------------


def test_empty_database_url_means_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = load(environ={"BROKKR__DATA_DIR": str(tmp_path / "data")})
    expected = (tmp_path / "data" / "brokkr.db").resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{expected}"


def test_relative_data_dir_resolves_to_an_absolute_sqlite_path() -> None:
    url = load(environ={}).database_url
    assert url.startswith("sqlite+aiosqlite:///")
    path = Path(url.split(":///", 1)[1])
    assert path.is_absolute() and path.name == "brokkr.db" and path.parent.name == ".brokkr"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/brokkr", "postgresql+asyncpg://u:p@db:5432/brokkr"),
        ("postgres://u@db/brokkr", "postgresql+asyncpg://u@db/brokkr"),
        ("postgresql+asyncpg://u@db/brokkr", "postgresql+asyncpg://u@db/brokkr"),
        ("  postgresql://db/brokkr  ", "postgresql+asyncpg://db/brokkr"),
    ],
)
def test_postgres_urls_map_to_the_asyncpg_driver(url: str, expected: str) -> None:
    assert load(environ={"BROKKR__DATABASE__URL": url}).database_url == expected


@pytest.mark.parametrize(
    "url", ["mysql://db/brokkr", "http://db/brokkr", "postgresql+psycopg://db/brokkr", "db"]
)
def test_other_database_schemes_are_rejected_at_load(url: str) -> None:
    with pytest.raises(SettingsError, match=r"database\.url"):
        load(environ={"BROKKR__DATABASE__URL": url})


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_exits_2_naming_the_key_on_an_unknown_file_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[broker]\nnope = 1\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "broker.nope" in result.output
    assert "configuration error" in result.output


def test_cli_exits_2_naming_the_key_on_a_bad_environment_value(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["db", "upgrade"],
        env={"BROKKR__BROKER__PORT": "abc", "BROKKR__DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2, result.output
    assert "broker.port" in result.output
    assert not (tmp_path / "brokkr.db").exists()


def test_cli_rejects_a_config_path_that_does_not_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["admin", "rotate-pak", "--config", str(tmp_path / "x.toml")])
    assert result.exit_code == 2
