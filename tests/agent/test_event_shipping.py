"""Kubernetes event shipping against the fake kube-apiserver (agent.md §10, fixing flaw 16):
events of this agent's stack objects and of what they own, never another agent's or unrelated
objects', recent events at start, and never raising when the cluster fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from brokkr.agent.kube import KubeCluster
from brokkr.agent.settings import AgentSection, Settings
from brokkr.common.wire import channel
from tests.agent import controllers as c
from tests.agent.shipping import (
    OTHER_AGENT,
    STACK,
    RecordingUplink,
    applied,
    shipping,
)
from tests.agent.waiting import eventually
from tests.fakes.kube_apiserver import FakeKubeApiServer


@pytest.fixture
def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    agent = AgentSection(pak="p", agent_name="a", cluster_name="c", kubeconfig_path=str(kubeconfig))
    return Settings(agent=agent)


async def shipped_reasons(uplink: RecordingUplink, *, until: str) -> list[str]:
    """The reasons of the shipped events once the one with reason ``until`` is among them
    (the watch delivers in order: what came before it and was not shipped never will be)."""

    def reasons() -> list[str]:
        found = [body["reason"] for body in uplink.bodies(channel.K8S_EVENT)]
        return found if until in found else []

    return list(await eventually(reasons, timeout=10, what=f"event {until}"))


async def test_events_of_the_stack_objects_and_of_what_they_own(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    web = fake.create(applied(c.workload("Deployment", "web")))
    rs = play.child(web, "ReplicaSet", "web-1")
    [pod] = play.pods(rs, 1)
    theirs = fake.create(applied(c.workload("Deployment", "api"), agent=OTHER_AGENT))
    [their_pod] = play.pods(play.child(theirs, "ReplicaSet", "api-1"), 1)
    loose = fake.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        fake.record_event(their_pod, "TheirPod", "not ours")
        fake.record_event(theirs, "TheirDeployment", "not ours")
        fake.record_event(loose, "Unrelated", "not a stack's")
        fake.record_event(web, "ScalingReplicaSet", "Scaled up replica set web-1 to 1")
        fake.record_event(rs, "SuccessfulCreate", "Created pod: web-1-0")
        fake.record_event(pod, "BackOff", "Back-off restarting failed container", "Warning")
        reasons = await shipped_reasons(uplink, until="BackOff")

    assert reasons == ["ScalingReplicaSet", "SuccessfulCreate", "BackOff"]
    bodies = {body["reason"]: body for body in uplink.bodies(channel.K8S_EVENT)}
    assert {body["stack_id"] for body in bodies.values()} == {str(STACK)}
    backoff = msgspec.convert(bodies["BackOff"], channel.K8sEventBody, strict=False)
    assert backoff.event_type == "Warning"
    assert backoff.message == "Back-off restarting failed container"
    assert backoff.source == "fake-controller"
    assert backoff.involved_object == channel.InvolvedObject(
        api_version="v1",
        kind="Pod",
        namespace="default",
        name="web-1-0",
        uid=pod["metadata"]["uid"],
    )
    assert abs(backoff.observed_at - datetime.now(UTC)) < timedelta(seconds=30)


async def test_attribution_survives_a_tiny_cache(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    """One uid remembered: every lookup evicts the last, and all still resolve correctly."""
    config = msgspec.structs.replace(settings.agent, kube_event_uid_cache_cap=1)
    web = fake.create(applied(c.workload("Deployment", "web")))
    [pod] = play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
    loose = fake.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    uplink = RecordingUplink()
    async with shipping(fake, cluster, config, uplink):
        for round_ in range(3):
            fake.record_event(pod, f"Pod{round_}", "")
            fake.record_event(loose, f"Loose{round_}", "")
            fake.record_event(web, f"Web{round_}", "")
        reasons = await shipped_reasons(uplink, until="Web2")
    assert reasons == ["Pod0", "Web0", "Pod1", "Web1", "Pod2", "Web2"]


def old_event(involved: c.Obj, reason: str, *, minutes_ago: float) -> c.Obj:
    when = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{reason.lower()}", "namespace": "default"},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": "default",
            "uid": meta["uid"],
        },
        "reason": reason,
        "message": "x" * 10_000,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 3,
    }


async def test_recent_events_from_before_the_start_are_shipped_once(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    web = fake.create(applied(c.workload("Deployment", "web")))
    fake.create(old_event(web, "LongAgo", minutes_ago=30))
    fake.create(old_event(web, "JustNow", minutes_ago=1))
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        fake.record_event(web, "AfterStart", "live")
        reasons = await shipped_reasons(uplink, until="AfterStart")
    assert sorted(reasons) == ["AfterStart", "JustNow"]
    [just_now] = [b for b in uplink.bodies(channel.K8S_EVENT) if b["reason"] == "JustNow"]
    # Bounded message; observed when it last happened, not when it was read.
    assert len(just_now["message"]) == 4096
    observed = datetime.fromisoformat(just_now["observed_at"])
    assert datetime.now(UTC) - observed > timedelta(seconds=50)
    assert just_now["event_type"] == "Normal"
    assert just_now["source"] is None


async def test_a_failing_watch_is_retried(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    web = fake.create(applied(c.workload("Deployment", "web")))
    fake.fail("GET", "/api/v1/events?", status=500, times=2)
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        assert len(fake.requests_matching("GET", "/api/v1/events?")) >= 3
        fake.record_event(web, "Recovered", "after two failures")
        assert await shipped_reasons(uplink, until="Recovered") == ["Recovered"]


async def test_switched_off(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    """With events off, pod logs still ship and the events are never even read."""
    config = msgspec.structs.replace(settings.agent, kube_events_enabled=False)
    web = fake.create(applied(c.workload("Deployment", "web"), stream_logs=True))
    [pod] = play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
    uplink = RecordingUplink()
    async with shipping(fake, cluster, config, uplink):
        fake.record_event(pod, "Started", "started")
        fake.append_pod_log("default", "web-1-0", "main", "hello")
        await eventually(lambda: uplink.bodies(channel.POD_LOG_LINE), timeout=10)
    assert uplink.bodies(channel.K8S_EVENT) == []
    assert fake.requests_matching("GET", "/events") == []

    nothing = msgspec.structs.replace(config, pod_logs_enabled=False)
    async with shipping(fake, cluster, nothing, uplink):
        pass
    assert fake.requests_matching("GET", "/events") == []
