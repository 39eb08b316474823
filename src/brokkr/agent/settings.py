"""Agent settings sections and their loader (D20). Nothing else in the agent reads os.environ.

Keys follow the reference agent (``BROKKR__AGENT__*``) so its Helm chart keeps working; the
reference's development-PAK and ``DEFAULT`` name defaults are gone (flaw 19): they are required.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from brokkr.common import settings as layered
from brokkr.common import yaml_guard
from brokkr.common.settings import LogSettings

# Parts of the shared BROKKR__* namespace that the broker (or telemetry, not implemented yet)
# owns: a broker and an agent often share one environment or .env file, and the agent must not
# refuse to start because of them. ``data_dir`` is a broker top-level key, not a section.
FOREIGN_SECTIONS = (
    "data_dir",
    "database",
    "broker",
    "auth",
    "cors",
    "webhooks",
    "retention",
    "limits",
    "telemetry",
)
# Required keys without a usable default, with the variable an operator sets for each.
_REQUIRED = {
    "pak": "BROKKR__AGENT__PAK",
    "agent_name": "BROKKR__AGENT__AGENT_NAME",
    "cluster_name": "BROKKR__AGENT__CLUSTER_NAME",
}

Seconds = Annotated[float, msgspec.Meta(gt=0)]


class AgentSection(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    # Broker root URL, without /api/v1.
    broker_url: str = "http://localhost:3000"
    # CA bundle (PEM file) trusted for an https:// broker's certificate, by REST and the channel
    # alike (a broker serving a private CA's certificate); None trusts the system's CAs.
    ca_bundle: str | None = None
    # Empty means "not configured": load() refuses to start and names the variable.
    pak: str = ""
    agent_name: str = ""
    cluster_name: str = ""
    polling_interval: Seconds = 10.0
    health_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    # The kubelet probes the pod IP, so all interfaces by default; tests bind to loopback.
    health_host: str = "0.0.0.0"  # noqa: S104
    # None: use $KUBECONFIG (resolved by load()), else in-cluster service-account credentials.
    kubeconfig_path: str | None = None
    # Attempts of the start-up broker wait; the probes keep serving meanwhile (flaw 18).
    max_retries: Annotated[int, msgspec.Meta(ge=1)] = 60
    # D23: an unchanged stack is re-applied this often, correcting drift (flaw 5).
    reconcile_interval: Seconds = 300.0
    # Capped exponential backoff with full jitter, for broker calls and failed applies.
    backoff_min: Seconds = 1.0
    backoff_max: Seconds = 300.0
    # Where the agent keeps its per-stack inventory ConfigMaps.
    namespace: Annotated[str, msgspec.Meta(min_length=1, max_length=63)] = "brokkr-system"
    # How long SIGTERM waits for the current step before exiting (flaw 17).
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 25.0
    # A deployment object over these YAML limits fails alone, before it is stamped: a billion
    # laughs would otherwise expand in the agent's memory. Defaults match the broker's.
    max_yaml_depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    max_yaml_scalar_chars: Annotated[int, msgspec.Meta(ge=1)] = 1024 * 1024
    max_yaml_expansion: Annotated[int, msgspec.Meta(ge=1)] = 10
    # Stacks reconciled at once: one slow stack (a CRD that never settles) must not hold up
    # the others, yet a thousand stacks must not flood the API server.
    max_concurrent_reconciles: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    # How long an applied CRD may take to become Established before its deployment object
    # fails with the CRD's conditions (reported, then retried with backoff).
    crd_establish_timeout: Seconds = 60.0
    # Work orders run at once, beside reconciles: a long build must not hold up the next order,
    # yet every running order holds a claim and watches the API server.
    max_concurrent_work_orders: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    # How long one work order may run (a Job or BuildRun to finish, as the reference's 15-minute
    # build wait) before it fails as retryable.
    work_order_timeout: Seconds = 900.0
    # How often a running work order's Job or BuildRun status is read.
    work_order_check_interval: Seconds = 5.0
    # Deployment health (reference keys): whether the agent reports it, how often the applied
    # workloads are assessed (a change is reported at once), and how often every object's
    # health is reported even when unchanged (the broker reads a row older than 3 x this as
    # stale).
    deployment_health_enabled: bool = True
    deployment_health_check_interval: Seconds = 10.0
    deployment_health_interval: Seconds = 60.0
    # On-demand diagnostics: how often pending requests are fetched (while ACTIVE), and how
    # long collecting one may take before an error is submitted instead.
    diagnostics_interval: Seconds = 10.0
    diagnostics_timeout: Seconds = 60.0
    # The last lines read of each container's log (and of its previous instance), each tail
    # cut at diagnostics_log_bytes; the result's three JSON documents together are cut to
    # diagnostics_max_bytes (the oldest events go, the longest logs are shortened).
    diagnostics_log_lines: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 100
    diagnostics_log_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1024 * 1024)] = 64 * 1024
    diagnostics_max_events: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 50
    diagnostics_max_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024, le=16 * 1024 * 1024)] = (
        1024 * 1024
    )
    # Agent-side webhook delivery (D18): whether this agent POSTs the events of subscriptions
    # whose target_labels it carries (receivers only the cluster reaches), and how often it
    # claims them while ACTIVE (the reference's hard-coded 10 s).
    webhook_delivery_enabled: bool = True
    webhook_delivery_interval: Seconds = 10.0
    # The broker channel (WebSocket): None derives the URL from broker_url (https -> wss, http
    # -> ws, + /internal/ws/agent); ws_force_rest never dials and uses REST for everything.
    # A frame that needs the broker's acknowledgement (a deploy event, a health report) and has
    # none within ws_ack_timeout is sent again over REST.
    ws_url: str | None = None
    ws_force_rest: bool = False
    ws_ack_timeout: Seconds = 5.0
    # Kubernetes events of a stack's objects (and of the pods and replica sets they own) are
    # shipped over the channel; the owning stack of an object is remembered for this many uids.
    kube_events_enabled: bool = True
    kube_event_uid_cache_cap: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    # Pod log lines of opted-in pods (annotation brokkr.io/stream-logs: "true" on the pod or on
    # the stack object owning it) are shipped over the channel, at most this many lines per
    # second per container; the rest are counted in a log_gap frame.
    pod_logs_enabled: bool = True
    pod_log_lines_per_second: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 100

    def __post_init__(self) -> None:
        if self.backoff_min > self.backoff_max:
            raise ValueError("agent.backoff_min must not exceed agent.backoff_max")

    @property
    def yaml_limits(self) -> yaml_guard.YamlLimits:
        return yaml_guard.YamlLimits(
            max_depth=self.max_yaml_depth,
            max_scalar_chars=self.max_yaml_scalar_chars,
            max_expansion=self.max_yaml_expansion,
        )


class Settings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    agent: AgentSection = msgspec.field(default_factory=AgentSection)
    log: LogSettings = msgspec.field(default_factory=LogSettings)


def load(*, config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults < TOML file (``config_file`` only) < ``BROKKR__*`` variables.

    ``BROKKR_CONFIG_FILE`` names the broker's file, so the agent ignores it. Raises
    ``SettingsError`` naming every missing required variable.
    """
    env = os.environ if environ is None else environ
    settings = layered.load(
        Settings,
        environ={k: v for k, v in env.items() if k.upper() != layered.CONFIG_FILE_ENV},
        config_file=config_file,
        foreign_sections=FOREIGN_SECTIONS,
    )
    missing = [var for key, var in _REQUIRED.items() if not getattr(settings.agent, key).strip()]
    if missing:
        raise layered.SettingsError(f"missing required agent setting(s): {', '.join(missing)}")
    if settings.agent.kubeconfig_path is None and env.get("KUBECONFIG"):
        agent = msgspec.structs.replace(settings.agent, kubeconfig_path=env["KUBECONFIG"])
        settings = msgspec.structs.replace(settings, agent=agent)
    return settings
