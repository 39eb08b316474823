"""Agent configuration loading (D20).

Covers defaults; precedence defaults < TOML file < ``BROKKR__AGENT__*``; required PAK, agent name
and cluster name failing with the variable named; the broker's variables (and
``BROKKR_CONFIG_FILE``, ``BROKKR__DATA_DIR``, telemetry) in the same environment being ignored;
bad values naming the dotted key; the kubeconfig fallback to ``KUBECONFIG``; the reference Helm
chart's variables for features this agent does not have being ignored; ``brokkr agent run
--help`` listing every variable, the required ones marked, with an example that starts.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from brokkr.agent import settings
from brokkr.broker import settings as broker_settings
from brokkr.cli.main import app
from brokkr.common.settings import SettingsError

PAK = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
REQUIRED = {
    "BROKKR__AGENT__PAK": PAK,
    "BROKKR__AGENT__AGENT_NAME": "agent-1",
    "BROKKR__AGENT__CLUSTER_NAME": "cluster-1",
}


def test_defaults_follow_the_reference_and_our_additions() -> None:
    agent = settings.load(environ=REQUIRED).agent
    assert (agent.broker_url, agent.polling_interval, agent.health_port) == (
        "http://localhost:3000",
        10.0,
        8080,
    )
    assert (agent.max_retries, agent.reconcile_interval, agent.kubeconfig_path) == (60, 300.0, None)
    assert (agent.backoff_min, agent.backoff_max) == (1.0, 300.0)
    assert (agent.namespace, agent.shutdown_grace_seconds) == ("brokkr-system", 25.0)
    assert (agent.pak, agent.agent_name, agent.cluster_name) == (PAK, "agent-1", "cluster-1")


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        (["BROKKR__AGENT__PAK"], ["BROKKR__AGENT__PAK"]),
        (["BROKKR__AGENT__CLUSTER_NAME"], ["BROKKR__AGENT__CLUSTER_NAME"]),
        (list(REQUIRED), list(REQUIRED)),
    ],
)
def test_missing_required_settings_name_their_variables(unset: list[str], named: list[str]) -> None:
    environ = {key: value for key, value in REQUIRED.items() if key not in unset}
    with pytest.raises(SettingsError, match="missing required agent setting") as caught:
        settings.load(environ=environ)
    assert all(variable in str(caught.value) for variable in named)


def test_blank_pak_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="BROKKR__AGENT__PAK"):
        settings.load(environ={**REQUIRED, "BROKKR__AGENT__PAK": "  "})


def test_environment_overrides_file_which_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[agent]\npolling_interval = 30\nhealth_port = 9000\n[log]\nlevel = "debug"\n',
        encoding="utf-8",
    )
    loaded = settings.load(
        config_file=config, environ={**REQUIRED, "BROKKR__AGENT__POLLING_INTERVAL": "5"}
    )
    assert (loaded.agent.polling_interval, loaded.agent.health_port) == (5.0, 9000)
    assert loaded.log.level == "debug"


def test_broker_variables_in_the_same_environment_are_ignored() -> None:
    environ = {
        **REQUIRED,
        "BROKKR__DATA_DIR": "/var/lib/brokkr",
        "BROKKR__DATABASE__URL": "postgresql://db/brokkr",
        "BROKKR__BROKER__PORT": "3000",
        "BROKKR__AUTH__CACHE_TTL_SECONDS": "5",
        "BROKKR__CORS__ALLOWED_ORIGINS": "http://a,http://b",
        "BROKKR__TELEMETRY__AGENT__SERVICE_NAME": "brokkr-agent",
        # The broker's config file: the agent never reads it, even if it is missing.
        "BROKKR_CONFIG_FILE": "/nonexistent/brokkr.toml",
        "BROKKR__LOG__FORMAT": "json",
    }
    loaded = settings.load(environ=environ)
    assert loaded.log.format == "json"


def test_every_broker_section_is_foreign_to_the_agent() -> None:
    # Guards against a new broker section breaking agents that share its environment.
    shared = {"log"}
    broker_keys = {field.encode_name for field in msgspec.structs.fields(broker_settings.Settings)}
    assert broker_keys - shared <= set(settings.FOREIGN_SECTIONS)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BROKKR__AGENT__HEALTH_PORT", "0", "agent.health_port"),
        ("BROKKR__AGENT__POLLING_INTERVAL", "soon", "agent.polling_interval"),
        ("BROKKR__AGENT__RECONCILE_INTERVAL", "0", "agent.reconcile_interval"),
        ("BROKKR__AGENT__NO_SUCH_KEY", "1", "agent.no_such_key"),
        ("BROKKR__LOG__LEVEL", "loud", "log.level"),
        ("BROKKR__AGENT__BACKOFF_MIN", "500", "backoff_min must not exceed"),
    ],
)
def test_bad_values_fail_naming_the_key(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings.load(environ={**REQUIRED, variable: value})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, None),
        ({"KUBECONFIG": "/home/me/.kube/config"}, "/home/me/.kube/config"),
        (
            {"KUBECONFIG": "/home/me/.kube/config", "BROKKR__AGENT__KUBECONFIG_PATH": "/k.yaml"},
            "/k.yaml",
        ),
    ],
)
def test_kubeconfig_path_falls_back_to_kubeconfig_variable(
    extra: dict[str, str], expected: str | None
) -> None:
    assert settings.load(environ={**REQUIRED, **extra}).agent.kubeconfig_path == expected


def test_reference_helm_chart_variables_are_accepted() -> None:
    # The reference chart's WebSocket, kube-event and deployment health settings are read as
    # this agent's own.
    chart = {
        **REQUIRED,
        "BROKKR__AGENT__BROKER_URL": "http://brokkr-broker:3000",
        "BROKKR__AGENT__POLLING_INTERVAL": "30",
        "BROKKR__AGENT__WS_URL": "ws://brokkr-broker:3000/internal/ws/agent",
        "BROKKR__AGENT__WS_FORCE_REST": "true",
        "BROKKR__AGENT__DEPLOYMENT_HEALTH_ENABLED": "false",
        "BROKKR__AGENT__DEPLOYMENT_HEALTH_INTERVAL": "60",
        "BROKKR__AGENT__KUBE_EVENT_UID_CACHE_CAP": "20000",
        "BROKKR__TELEMETRY__ENABLED": "false",
    }
    agent = settings.load(environ=chart).agent
    assert (agent.broker_url, agent.polling_interval) == ("http://brokkr-broker:3000", 30.0)
    assert (agent.deployment_health_enabled, agent.deployment_health_interval) == (False, 60.0)
    assert agent.ws_url == "ws://brokkr-broker:3000/internal/ws/agent"
    assert (agent.ws_force_rest, agent.kube_event_uid_cache_cap) == (True, 20000)


def test_agent_run_help_lists_every_variable_and_marks_the_required_ones() -> None:
    result = CliRunner().invoke(app, ["agent", "run", "--help"], terminal_width=100)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for field in settings.AgentSection.__struct_fields__:
        variable = f"BROKKR__AGENT__{field.upper()}"
        [line] = [line for line in lines if line.strip().startswith(variable + " ")]
        assert ("*" in line.split()) == (variable in REQUIRED), line
    example = result.output[result.output.index("Example:") :]
    assert all(variable in example for variable in REQUIRED)
