"""Diagnostics collection over HTTP against the fake kube-apiserver: only the deployment
object's own pods, events and logs in their own namespaces, current and previous logs with
``tailLines``, a log that cannot be read, and size bounds that always leave valid JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from brokkr.agent.kube import KubeCluster
from brokkr.agent.kube.diagnosing import MAX_PODS, TRUNCATED, Limits, diagnose, fit, pod_status
from brokkr.agent.outcomes import Diagnosis
from brokkr.agent.settings import AgentSection, Settings
from brokkr.common import wire
from tests.agent import controllers as c
from tests.fakes.kube_apiserver import FakeKubeApiServer


@pytest.fixture
def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    agent = AgentSection(pak="p", agent_name="a", cluster_name="c", kubeconfig_path=str(kubeconfig))
    return Settings(agent=agent)


def decoded(diagnosis: Diagnosis) -> tuple[Any, Any, Any]:
    """The three documents parsed (each must be valid JSON) and typed as the CLI reads them."""
    assert diagnosis.log_tails is not None
    return (
        msgspec.json.decode(diagnosis.pod_statuses, type=list[wire.PodStatus]),
        msgspec.json.decode(diagnosis.events, type=list[wire.DiagnosticEvent]),
        msgspec.json.decode(diagnosis.log_tails, type=wire.LogTails),
    )


def container(name: str, state: c.Obj, *, restarts: int = 0, **extra: Any) -> c.Obj:
    """A container status as the kubelet writes it."""
    return {
        "name": name,
        "image": "nginx:1",
        "imageID": "",
        "ready": "running" in state,
        "restartCount": restarts,
        "state": state,
        **extra,
    }


def running() -> c.Obj:
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [container("main", {"running": {}})],
    }


def crashing(restarts: int) -> c.Obj:
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting"}}
    last = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [container("main", waiting, restarts=restarts, lastState=last)],
    }


def event(involved: c.Obj, reason: str, last: str, **extra: Any) -> c.Obj:
    meta = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"kind": involved["kind"], "name": meta["name"]},
        "reason": reason,
        "message": f"{reason} happened",
        "type": "Warning",
        "lastTimestamp": last,
        **extra,
    }


async def test_only_the_object_s_own_pods_events_and_logs(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    web = c.workload("Deployment", "web", replicas=2)
    fake.create(web)
    rs = play.child(web, "ReplicaSet", "web-1")
    healthy, crashed = play.pods(rs, 2)
    play.set_pods([healthy], running())
    play.set_pods([crashed], crashing(restarts=3))
    fake.set_pod_log("default", "web-1-0", "serving\n")
    fake.set_pod_log("default", "web-1-1", "".join(f"line {i}\n" for i in range(1, 11)))
    fake.set_pod_log("default", "web-1-1", "booting\nout of memory\n", previous=True)
    # Another stack's pods in the same namespace, and a same-named Deployment elsewhere.
    stranger = c.workload("ReplicaSet", "stranger", labels={"app": "web"})
    fake.create(stranger)
    [stranger_pod] = play.pods(stranger, 1)
    elsewhere = c.workload("Deployment", "web", namespace="other")
    fake.create(elsewhere)
    [twin] = play.pods(play.child(elsewhere, "ReplicaSet", "web-1"), 1)
    fake.set_pod_log("other", "web-1-0", "not mine\n")
    for involved, reason in [
        (c.Controllers(fake).live(web), "ScalingReplicaSet"),
        (rs, "SuccessfulCreate"),
        (crashed, "BackOff"),
        (stranger_pod, "StrangerEvent"),
        (twin, "TwinEvent"),
    ]:
        fake.record_event(involved, reason, f"{reason} happened", "Warning")

    found = await diagnose(cluster.client, [c.ref(web)], Limits(log_lines=3))

    pods, events, tails = decoded(found)
    assert [(p.namespace, p.name, p.owner) for p in pods] == [
        ("default", "web-1-0", "Deployment/web"),
        ("default", "web-1-1", "Deployment/web"),
    ]
    [container] = pods[1].containers
    assert (container.state, container.state_reason, container.restart_count) == (
        "Waiting",
        "CrashLoopBackOff",
        3,
    )
    assert container.last_state_reason == "OOMKilled"
    assert sorted((e.involved_kind, e.involved_object, e.reason) for e in events) == [
        ("Deployment", "web", "ScalingReplicaSet"),
        ("Pod", "web-1-1", "BackOff"),
        ("ReplicaSet", "web-1", "SuccessfulCreate"),
    ]
    assert tails == {
        "web-1-0/main": "serving\n",
        # tailLines: the last 3 lines only.
        "web-1-1/main": "line 8\nline 9\nline 10\n",
        "web-1-1/main/previous": "booting\nout of memory\n",
    }
    # The events were selected by the API server, one query per object, never all of them.
    queries = [r.query for r in fake.requests_matching("GET", "/events")]
    assert queries and all("fieldSelector=involvedObject.kind" in q for q in queries)


def test_pod_statuses_list_init_containers_and_unreported_ones() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "x"}],
            "containers": [{"name": "main", "image": "x"}, {"name": "side", "image": "x"}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"},
            ],
            "initContainerStatuses": [
                {
                    "name": "migrate",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"reason": "Error", "message": "exit 1"}},
                }
            ],
            "containerStatuses": [
                {
                    "name": "main",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2025-01-02T10:00:00Z"}},
                }
            ],
        },
    }

    status = pod_status(pod, owner="Job/migrate")

    assert status.phase == "Pending"
    assert status.conditions == [
        wire.PodCondition(condition_type="PodScheduled", status="False", reason="Unschedulable")
    ]
    assert [(x.name, x.init, x.state, x.state_reason) for x in status.containers] == [
        ("migrate", True, "Terminated", "Error"),
        ("main", False, "Running", None),
        ("side", False, "Unknown", None),
    ]
    assert status.containers[1].state_message == "Started at 2025-01-02T10:00:00Z"
    bare = pod_status({"metadata": {"name": "q", "namespace": "ns"}}, owner=None)
    assert (bare.phase, bare.conditions, bare.containers) == ("Unknown", [], [])


async def test_events_newest_first_and_at_most_max_events(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    fake.create(c.bare_pod("solo"))
    solo = fake.get("Pod", "solo")
    assert solo is not None
    for minute in (3, 1, 4, 2):
        fake.create(event(solo, f"At{minute}", f"2025-01-02T10:0{minute}:00Z"))
    # An events.k8s.io-style event: no lastTimestamp, a series instead.
    fake.create(
        event(
            solo,
            "Series",
            "",
            eventTime="2025-01-02T09:00:00.000000Z",
            series={"count": 7, "lastObservedTime": "2025-01-02T10:05:00.000000Z"},
        )
    )

    found = await diagnose(cluster.client, [c.ref(c.bare_pod("solo"))], Limits(max_events=3))

    _, events, _ = decoded(found)
    assert [e.reason for e in events] == ["Series", "At4", "At3"]
    assert events[0].count == 7
    assert events[0].last_timestamp == "2025-01-02T10:05:00.000000Z"


async def test_a_cronjob_s_jobs_pods_and_init_container_logs(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    nightly = c.cronjob("nightly")
    fake.create(nightly)
    run = play.child(nightly, "Job", "nightly-1")
    [pod] = play.pods(run, 1)
    fake.record_event(run, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    fake.set_pod_log("default", "nightly-1-0", "done\n")

    found = await diagnose(cluster.client, [c.ref(nightly)], Limits())

    pods, events, tails = decoded(found)
    assert [(p.name, p.owner) for p in pods] == [("nightly-1-0", "CronJob/nightly")]
    assert [(e.involved_kind, e.reason) for e in events] == [("Job", "BackoffLimitExceeded")]
    assert tails == {"nightly-1-0/main": "done\n"}
    assert pod["metadata"]["name"] == "nightly-1-0"


async def test_a_log_that_cannot_be_read_is_reported_in_its_place(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    web = c.workload("ReplicaSet", "web", replicas=2)
    fake.create(web)
    play.pods(web, 2)
    fake.set_pod_log("default", "web-0", "fine\n")
    fake.fail("GET", "/pods/web-1/log", status=500, times=None)
    # A restarted container whose previous instance's log is gone (the kubelet's 400).
    play.set_pods([c.Controllers(fake).live(c.bare_pod("web-0"))], crashing(restarts=1))

    found = await diagnose(cluster.client, [c.ref(web)], Limits())

    _, _, tails = decoded(found)
    assert tails["web-0/main"] == "fine\n"
    assert tails["web-0/main/previous"] == (
        'Error: BadRequest: previous terminated container "main" in pod "web-0" not found'
    )
    assert tails["web-1/main"].startswith("Error: InternalError")


async def test_a_long_log_is_cut_with_a_marker(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    fake.create(c.bare_pod("chatty"))
    fake.set_pod_log("default", "chatty", "x" * 5000 + "\n")

    found = await diagnose(cluster.client, [c.ref(c.bare_pod("chatty"))], Limits(log_bytes=1024))

    _, _, tails = decoded(found)
    assert tails["chatty/main"] == "x" * 1024 + f"\n{TRUNCATED}"
    [request] = fake.requests_matching("GET", "/chatty/log")
    assert "limitBytes=1025" in request.query
    assert "tailLines=100" in request.query


async def test_pods_are_capped(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers
) -> None:
    big = c.workload("ReplicaSet", "big", replicas=MAX_PODS + 5)
    fake.create(big)
    play.pods(big, MAX_PODS + 5)

    found = await diagnose(cluster.client, [c.ref(big)], Limits(max_events=0))

    pods, _, tails = decoded(found)
    assert len(pods) == MAX_PODS
    assert len(tails) == MAX_PODS


def test_the_whole_result_fits_max_bytes_as_valid_json() -> None:
    statuses = [
        wire.PodStatus(name=f"p{i}", namespace="ns", phase="Running", owner="Deployment/web")
        for i in range(20)
    ]
    events = [
        wire.DiagnosticEvent(
            reason=f"R{i}", message='quote " and \\ and \n' * 40, involved_object="p"
        )
        for i in range(50)
    ]
    tails = {
        "p0/main": "short\n",
        "p1/main": "".join(f'log "{i}" \\ \u00e9\n' for i in range(5000)),
        "p2/main": "y" * 70_000,
        "p2/main/previous": "\x00\x1f control characters " * 2000,
    }
    max_bytes = 64 * 1024

    found = fit(statuses, events, tails, max_bytes=max_bytes)

    assert sum(len(doc.encode()) for doc in json.loads(msgspec.json.encode(found)).values()) <= (
        max_bytes
    )
    pods, kept_events, kept_tails = decoded(found)
    assert len(pods) == 20
    # The oldest events went first; pods and events took at most half.
    assert 0 < len(kept_events) < 50
    assert [e.reason for e in kept_events] == [f"R{i}" for i in range(len(kept_events))]
    assert kept_tails["p0/main"] == "short\n"
    for key in ("p1/main", "p2/main", "p2/main/previous"):
        assert kept_tails[key].startswith(f"{TRUNCATED}\n")
        # The newest part is kept.
        assert tails[key].endswith(kept_tails[key].removeprefix(f"{TRUNCATED}\n"))


def test_a_result_within_bounds_is_unchanged() -> None:
    status = wire.PodStatus(name="p", namespace="ns", phase="Running")
    found = fit([status], [], {"p/main": "hello\n"}, max_bytes=1024 * 1024)
    assert decoded(found) == ([status], [], {"p/main": "hello\n"})
