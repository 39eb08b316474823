"""Finding a workload's pods by its own selector and ownership, over HTTP against the fake
kube-apiserver: every kind, never a pod of another namespace, of another controller, or one the
selector's expressions exclude."""

from __future__ import annotations

from pathlib import Path

import pytest

from brokkr.agent import kube
from brokkr.agent.kube import KubeCluster, KubeError
from brokkr.agent.kube.workloads import label_selector
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.settings import AgentSection, Settings
from tests.agent import controllers as c
from tests.fakes.kube_apiserver import FakeKubeApiServer


@pytest.fixture
def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    agent = AgentSection(pak="p", agent_name="a", cluster_name="c", kubeconfig_path=str(kubeconfig))
    return Settings(agent=agent)


def names(objects: list[c.Obj]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


async def test_a_deployment_s_pods_through_its_replicasets(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    web = c.workload("Deployment", "web", replicas=2)
    fake.create(web)
    rs = play.child(web, "ReplicaSet", "web-1")
    play.pods(rs, 2)
    # Same labels, but another namespace, and in this namespace a pod another controller owns.
    elsewhere = c.workload("Deployment", "web", namespace="other")
    fake.create(elsewhere)
    play.pods(play.child(elsewhere, "ReplicaSet", "web-1"), 1)
    stranger = c.workload("ReplicaSet", "stranger", labels={"app": "web"})
    fake.create(stranger)
    play.pods(stranger, 1)

    found = await kube.pods_of(cluster.client, c.ref(web))

    assert found.workload is not None and found.workload["metadata"]["name"] == "web"
    assert names(found.children) == ["web-1"]
    assert names(found.pods) == ["web-1-0", "web-1-1"]
    assert {p["metadata"]["namespace"] for p in found.pods} == {"default"}


async def test_a_selected_pod_without_a_controller_counts(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    web = c.workload("Deployment", "web")
    fake.create(web)
    play.child(web, "ReplicaSet", "web-1")
    fake.create(c.bare_pod("adoptable", labels={"app": "web"}))
    fake.create(c.bare_pod("unrelated", labels={"app": "db"}))

    found = await kube.pods_of(cluster.client, c.ref(web))

    assert names(found.pods) == ["adoptable"]


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "ReplicaSet"])
async def test_pods_by_the_workload_s_own_selector(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, kind: str
) -> None:
    selector = {
        "matchLabels": {"app": "db"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["primary", "replica"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    db = c.workload(kind, "db", labels={"app": "db", "tier": "primary"}, selector=selector)
    fake.create(db)
    play.pods(db, 2)
    # Right "app" label, but the expressions exclude them.
    fake.create(c.bare_pod("wrong-tier", labels={"app": "db", "tier": "cache"}))
    fake.create(c.bare_pod("canary", labels={"app": "db", "tier": "primary", "canary": "y"}))
    fake.create(c.bare_pod("db-x", namespace="other", labels={"app": "db", "tier": "primary"}))

    found = await kube.pods_of(cluster.client, c.ref(db))

    assert names(found.pods) == ["db-0", "db-1"]
    assert found.children == []


async def test_a_job_s_pods_by_its_generated_selector(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    migrate = c.job("migrate")
    fake.create(migrate)
    play.pods(migrate, 1)
    fake.create(c.bare_pod("migrate-lookalike", labels={"app": "migrate"}))

    found = await kube.pods_of(cluster.client, c.ref(migrate))

    assert names(found.pods) == ["migrate-0"]


async def test_a_cronjob_s_pods_through_its_jobs(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    nightly = c.cronjob("nightly")
    fake.create(nightly)
    first = play.child(nightly, "Job", "nightly-1")
    second = play.child(nightly, "Job", "nightly-2")
    play.pods(first, 1)
    play.pods(second, 1)
    fake.create(c.job("unowned"))

    found = await kube.pods_of(cluster.client, c.ref(nightly))

    assert names(found.children) == ["nightly-1", "nightly-2"]
    assert names(found.pods) == ["nightly-1-0", "nightly-2-0"]


async def test_a_bare_pod_is_its_own_pod(fake: FakeKubeApiServer, cluster: KubeCluster) -> None:
    fake.create(c.bare_pod("solo"))

    found = await kube.pods_of(cluster.client, c.ref(c.bare_pod("solo")))

    assert names(found.pods) == ["solo"]


async def test_gone_workloads_and_kinds_without_pods(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    gone = await kube.pods_of(cluster.client, c.ref(c.workload("Deployment", "gone")))
    config = ObjectRef(api_version="v1", kind="ConfigMap", namespace="default", name="cfg")
    fake.clear_requests()

    assert (gone.workload, gone.pods) == (None, [])
    assert (await kube.pods_of(cluster.client, config)).pods == []
    assert not kube.has_pods(config)
    assert fake.requests == []  # no call at all for a kind without pods


async def test_many_pods_are_read_in_pages(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    big = c.workload("ReplicaSet", "big", replicas=501)
    fake.create(big)
    play.pods(big, 501)
    fake.clear_requests()

    found = await kube.pods_of(cluster.client, c.ref(big))

    assert len(found.pods) == 501
    assert len(fake.requests_matching("GET", "/pods")) == 2


async def test_an_api_error_is_raised(fake: FakeKubeApiServer, cluster: KubeCluster) -> None:
    fake.create(c.workload("Deployment", "web"))
    fake.fail("GET", "/pods", status=403)
    with pytest.raises(KubeError) as caught:
        await kube.pods_of(cluster.client, c.ref(c.workload("Deployment", "web")))
    assert caught.value.code == 403


@pytest.mark.parametrize(
    ("selector", "query"),
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchExpressions": [
                    {"key": "t", "operator": "NotIn", "values": ["y", "x"]},
                    {"key": "e", "operator": "Exists"},
                    {"key": "d", "operator": "DoesNotExist"},
                ]
            },
            "t notin (x,y),e,!d",
        ),
        (None, None),
        ({}, None),
        ({"matchLabels": {}}, None),
        ({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]}, None),
    ],
)
def test_label_selector(selector: c.Obj | None, query: str | None) -> None:
    assert label_selector(selector) == query
