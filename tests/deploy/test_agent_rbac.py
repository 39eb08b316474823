"""The agent chart against the fake kube-apiserver: its rendered objects apply (the fake checks
built-in kinds against the real schemas), and its default RBAC is what the agent really uses.

The RBAC check runs the agent's Kubernetes side through a representative scenario (a stack with a
CRD, a custom resource, a Namespace, a ConfigMap, a Deployment and a Service applied; the
workload's health checked and diagnosed; events and logs shipped; an update that prunes; a
``custom`` work order with a Job; the stack deleted), derives the (API group, resource, verb)
triples from the fake's request log as the API server would authorize them, and compares them
with the chart's rules: every used triple is granted (in the namespace it was used in), and
every granted triple is used or listed in ``DOCUMENTED_EXTRAS`` with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs

import msgspec
import pytest

from brokkr.agent import kube, reconcile
from brokkr.agent.kube import HealthChecker, KubeCluster
from brokkr.agent.kube.diagnosing import Limits, diagnose
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.settings import AgentSection, Settings
from brokkr.agent.telemetry import STREAM_LOGS_ANNOTATION
from brokkr.agent.work_orders import Executor
from brokkr.common import wire
from brokkr.common.wire import channel
from tests.agent import controllers as c
from tests.agent.shipping import AGENT, STACK, RecordingUplink, shipping
from tests.agent.test_reconcile import CONFIGMAP, NAMESPACE, deployment_object
from tests.agent.test_work_orders import CUSTOM_WITH_JOB, order
from tests.agent.waiting import eventually
from tests.deploy.helm import NAMESPACE as RELEASE_NAMESPACE
from tests.deploy.helm import Helm, Obj, examples, helm_binary, of_kind
from tests.fakes.kube_apiserver import FakeKubeApiServer
from tests.fakes.widgets import CRD, WIDGET

# (API group, resource, verb); resource with its subresource as RBAC names it ("pods/log").
Triple = tuple[str, str, str]
# A triple and the namespace it applies in (None: cluster-wide or cluster-scoped).
Grant = tuple[str, str, str, str | None]

# Granted by default though the scenario does not use them, each with why.
_STACK_KIND = (
    "a kind stacks commonly hold: the verbs the scenario's Deployment, Service and ConfigMap "
    "needed (get, apply = patch + create, prune = delete)"
)
DOCUMENTED_EXTRAS: dict[Triple, str] = {
    **{
        (group, resource, verb): _STACK_KIND
        for group, resource in [
            ("", "serviceaccounts"),
            ("", "persistentvolumeclaims"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "cronjobs"),
            ("networking.k8s.io", "ingresses"),
            ("networking.k8s.io", "networkpolicies"),
            ("policy", "poddisruptionbudgets"),
            ("autoscaling", "horizontalpodautoscalers"),
        ]
        for verb in ("get", "create", "patch", "delete")
    },
    ("batch", "jobs", "list"): "a CronJob's health and diagnostics find its pods through its Jobs",
    ("batch", "jobs", "delete"): "a Job in a stack is pruned like any stack object (the "
    "scenario's Job comes from a work order, which leaves it)",
}
# Paths every authenticated user may read (the system:discovery and system:public-info-viewer
# roles): the chart needs no nonResourceURLs rule for them.
DISCOVERY_PREFIXES = ("/api", "/apis", "/version")

DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations: {{"{STREAM_LOGS_ANNOTATION}": "true"}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "nginx:1"}}]}}
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""
FULL = "---".join([WIDGET, DEPLOYMENT, SERVICE, CONFIGMAP, CRD, NAMESPACE])
WITHOUT_CONFIGMAP = "---".join([WIDGET, DEPLOYMENT, SERVICE, CRD, NAMESPACE])
# The scenario's stack holds a custom resource: granted the way a user would, by value.
WIDGET_RULE = (
    "rbac.additionalRules[0].apiGroups={example.com}",
    "rbac.additionalRules[0].resources={widgets}",
    "rbac.additionalRules[0].verbs={get,create,patch,delete}",
)


@pytest.fixture(scope="session")
def helm() -> Helm:
    return helm_binary()


@pytest.mark.parametrize(
    "values", [None, *examples("brokkr-agent")], ids=lambda v: v.stem if v else "default"
)
async def test_rendered_chart_applies_to_the_api_server(helm: Helm, values: Path | None) -> None:
    objects = [
        obj
        for obj in helm.render("brokkr-agent", values, set_values=("broker.pak=p",))
        if obj["kind"] != "PodMonitor"  # a CRD's kind: test_helm_charts checks its shape
    ]
    namespaces = {RELEASE_NAMESPACE} | {
        o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]
    }
    async with FakeKubeApiServer() as fake:
        for name in sorted(namespaces):
            fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for obj in objects:
            fake.apply(obj, manager="helm")  # helm 4 installs with server-side apply
        for obj in objects:
            meta = obj["metadata"]
            assert fake.get(obj["kind"], meta["name"], meta.get("namespace")) is not None


def settings_for(kubeconfig: Path) -> Settings:
    agent = AgentSection(
        pak="pak",
        agent_name="agent",
        cluster_name="cluster",
        kubeconfig_path=str(kubeconfig),
        namespace=RELEASE_NAMESPACE,
        backoff_min=0.01,
        backoff_max=0.05,
        work_order_timeout=10.0,
        work_order_check_interval=0.05,
    )
    return Settings(agent=agent)


async def reconciled(cluster: KubeCluster, settings: Settings, obj: wire.DeploymentObject) -> None:
    [outcome] = await reconcile.Reconciler(settings, cluster)([obj], agent_id=AGENT)
    assert outcome.success, outcome.message


async def run_scenario(fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings) -> None:
    play = c.Controllers(fake)
    await reconciled(cluster, settings, deployment_object(FULL, stack=STACK))

    # The Deployment's controllers, as a cluster would run them.
    web = play.live(c.workload("Deployment", "web", namespace="shop"))
    [pod] = play.pods(play.child(web, "ReplicaSet", "web-1"), 1, c.ready_pod())
    fake.set_status("Deployment", "web", c.available(1), "shop")
    fake.set_pod_log("shop", pod["metadata"]["name"], "serving\n")
    refs = (
        ObjectRef(api_version="apps/v1", kind="Deployment", namespace="shop", name="web"),
        ObjectRef(api_version="v1", kind="Service", namespace="shop", name="web"),
    )
    assessment = await HealthChecker(cluster.client)(refs)
    assert assessment.status == "healthy", assessment
    diagnosis = await diagnose(cluster.client, refs, Limits())
    assert diagnosis.log_tails is not None and "serving" in diagnosis.log_tails

    # Events alone (pod logs off): an event's pod is looked up, not known from a pod watch.
    uplink = RecordingUplink()
    events_only = msgspec.structs.replace(settings.agent, pod_logs_enabled=False)
    async with shipping(fake, cluster, events_only, uplink):
        fake.record_event(pod, "Pulled", "image pulled")
        await eventually(lambda: uplink.bodies(channel.K8S_EVENT), timeout=10, what="an event")
    async with shipping(fake, cluster, settings.agent, uplink):
        fake.append_pod_log("shop", pod["metadata"]["name"], "main", "request served")
        await eventually(lambda: uplink.bodies(channel.POD_LOG_LINE), timeout=10, what="a line")

    await reconciled(cluster, settings, deployment_object(WITHOUT_CONFIGMAP, stack=STACK))
    assert fake.get("ConfigMap", "settings", "shop") is None

    work = order(CUSTOM_WITH_JOB)
    task = asyncio.create_task(Executor(settings, cluster)(work, agent_id=AGENT))
    await eventually(lambda: fake.get("Job", "migrate", "jobs"), timeout=10, what="the Job")
    fake.set_status("Job", "migrate", c.job_complete(), "jobs")
    result = await asyncio.wait_for(task, 10)
    assert result.success, result

    await reconciled(cluster, settings, deployment_object("", stack=STACK, deletion=True))
    assert fake.get("Namespace", "shop") is None or fake.get("Deployment", "web", "shop") is None


def authorized_as(method: str, path: str, query: str, status: int) -> list[Grant]:
    """What the API server authorizes a resource request as (empty for discovery)."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        assert path.startswith(DISCOVERY_PREFIXES), path
        return []
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = (rest + [None, None])[:3]
    assert resource is not None
    if sub is not None:
        resource = f"{resource}/{sub}"
    params = parse_qs(query)
    if method == "GET":
        verbs = (
            ["get"] if name else ["watch" if params.get("watch") in (["true"], ["1"]) else "list"]
        )
    elif method == "PATCH":
        # An apply that creates its object is authorized as create too.
        verbs = ["patch", "create"] if status == 201 else ["patch"]
    else:
        verbs = {
            "POST": ["create"],
            "PUT": ["update"],
            "DELETE": ["delete" if name else "deletecollection"],
        }[method]
    return [(group, resource, verb, namespace) for verb in verbs]


def grants(objects: Iterable[Obj]) -> set[Grant]:
    found: set[Grant] = set()
    for role in objects:
        if role["kind"] not in ("ClusterRole", "Role"):
            continue
        namespace = role["metadata"].get("namespace") if role["kind"] == "Role" else None
        for rule in role["rules"]:
            assert "resourceNames" not in rule, rule  # the default grants by kind only
            found |= {
                (group, resource, verb, namespace)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            }
    return found


async def test_default_rbac_is_what_the_agent_uses(helm: Helm, tmp_path: Path) -> None:
    rendered = helm.render("brokkr-agent", set_values=WIDGET_RULE)
    granted = grants(rendered)
    bound = {b["roleRef"]["name"] for b in of_kind(rendered, "ClusterRoleBinding")} | {
        b["roleRef"]["name"] for b in of_kind(rendered, "RoleBinding")
    }
    assert bound == {r["metadata"]["name"] for r in rendered if r["kind"].endswith("Role")}

    async with FakeKubeApiServer() as fake:
        fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "brokkr"}})
        settings = settings_for(fake.write_kubeconfig(tmp_path / "kubeconfig"))
        cluster = await kube.connect(settings)
        fake.clear_requests()
        try:
            await run_scenario(fake, cluster, settings)
        finally:
            await cluster.aclose()
        used = {
            grant
            for r in fake.requests
            for grant in authorized_as(r.method, r.path, r.query, r.status)
        }

    def allowed(use: Grant) -> bool:
        group, resource, verb, namespace = use
        return (group, resource, verb, None) in granted or (
            namespace is not None and use in granted
        )

    assert sorted(u for u in used if not allowed(u)) == [], "the agent needs these"
    used_triples = {u[:3] for u in used}
    granted_triples = {g[:3] for g in granted}
    unused = granted_triples - used_triples - DOCUMENTED_EXTRAS.keys()
    assert sorted(unused) == [], (
        f"granted, never used, not documented as an extra: {sorted(unused)}"
    )
    # Each documented extra is still granted (the list does not rot).
    assert DOCUMENTED_EXTRAS.keys() <= granted_triples
    assert not (DOCUMENTED_EXTRAS.keys() & used_triples), "used now: no longer an extra"
