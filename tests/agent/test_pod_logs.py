"""Pod log shipping against the fake kube-apiserver (agent.md §11, fixing flaw 16): opted-in
pods of this agent's stacks only, the lines' own timestamps, following, re-attaching after a
container restart without duplicates, pre-existing pods from now, true gap counts, tails
cancelled with their pods, nothing buffered when the channel refuses."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from brokkr.agent.kube import KubeCluster
from brokkr.agent.kube.discovering import Discovery
from brokkr.agent.kube.pod_logs import PodLogShipper
from brokkr.agent.kube.stack_owners import StackOwners
from brokkr.agent.kube.streams import Streams
from brokkr.agent.kube.watching import list_and_watch
from brokkr.agent.settings import AgentSection, Settings
from brokkr.agent.telemetry import STREAM_LOGS_ANNOTATION, OwnerCache, from_nanoseconds
from brokkr.common.wire import channel
from tests.agent import controllers as c
from tests.agent.shipping import AGENT, OTHER_AGENT, STACK, RecordingUplink, applied, shipping
from tests.agent.waiting import eventually
from tests.fakes.kube.store import WriteOptions
from tests.fakes.kube_apiserver import FakeKubeApiServer


@pytest.fixture
def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    agent = AgentSection(
        pak="p",
        agent_name="a",
        cluster_name="c",
        kubeconfig_path=str(kubeconfig),
        kube_events_enabled=False,
    )
    return Settings(agent=agent)


def lines_of(uplink: RecordingUplink, pod: str) -> list[str]:
    return [b["line"] for b in uplink.bodies(channel.POD_LOG_LINE) if b["pod"] == pod]


async def arrived(uplink: RecordingUplink, pod: str, count: int) -> list[str]:
    def enough() -> list[str]:
        found = lines_of(uplink, pod)
        return found if len(found) >= count else []

    return list(await eventually(enough, timeout=10, what=f"{count} lines of {pod}"))


def stamps(fake: FakeKubeApiServer, pod: str, container: str = "main") -> list[datetime]:
    _, view = fake.cluster.log_view("default", pod, container)
    return [from_nanoseconds(line.stamp) for line in view.lines]


def log_requests(fake: FakeKubeApiServer, pod: str) -> list[str]:
    return [r.query for r in fake.requests_matching("GET", f"/pods/{pod}/log")]


async def test_opted_in_pods_of_this_agent_s_stacks_only(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        # Not opted in; opted in but another agent's; opted in on the Deployment (ours).
        quiet = fake.create(applied(c.workload("Deployment", "quiet")))
        play.pods(play.child(quiet, "ReplicaSet", "quiet-1"), 1)
        theirs = fake.create(applied(c.workload("Deployment", "api"), agent=OTHER_AGENT))
        play.pods(play.child(theirs, "ReplicaSet", "api-1"), 1)
        web = fake.create(applied(c.workload("Deployment", "web"), stream_logs=True))
        play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
        for pod in ("quiet-1-0", "api-1-0", "web-1-0"):
            fake.append_pod_log("default", pod, "main", f"{pod} says hi")
        assert await arrived(uplink, "web-1-0", 1) == ["web-1-0 says hi"]
        # A line written later arrives too (the log is followed).
        fake.append_pod_log("default", "web-1-0", "main", "later")
        assert await arrived(uplink, "web-1-0", 2) == ["web-1-0 says hi", "later"]

    # The pods before it in the watch were judged first, and never read.
    assert log_requests(fake, "quiet-1-0") == log_requests(fake, "api-1-0") == []
    assert {b["pod"] for b in uplink.bodies(channel.POD_LOG_LINE)} == {"web-1-0"}
    first, second = (
        msgspec.convert(b, channel.PodLogLineBody, strict=False)
        for b in uplink.bodies(channel.POD_LOG_LINE)
    )
    assert (first.agent_id, first.stack_id, first.namespace) == (AGENT, STACK, "default")
    assert first.container == "main"
    # The time the container wrote each line, not when it was received.
    assert [first.ts, second.ts] == stamps(fake, "web-1-0")


async def test_annotation_on_the_pod_and_every_container_but_init(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    web = fake.create(applied(c.workload("Deployment", "web")))
    rs = play.child(web, "ReplicaSet", "web-1")
    body = c.bare_pod("web-1-0")
    body["metadata"]["ownerReferences"] = [c.owner_reference(rs)]
    body["metadata"]["annotations"] = {STREAM_LOGS_ANNOTATION: "true"}
    body["spec"]["containers"].append({"name": "sidecar", "image": "x"})
    body["spec"]["initContainers"] = [{"name": "setup", "image": "x"}]
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        fake.create(body)
        fake.append_pod_log("default", "web-1-0", "setup", "init")
        fake.append_pod_log("default", "web-1-0", "main", "from main")
        fake.append_pod_log("default", "web-1-0", "sidecar", "from sidecar")
        await arrived(uplink, "web-1-0", 2)
    by_container = {b["container"]: b["line"] for b in uplink.bodies(channel.POD_LOG_LINE)}
    assert by_container == {"main": "from main", "sidecar": "from sidecar"}
    assert not any("container=setup" in q for q in log_requests(fake, "web-1-0"))


async def test_a_restarted_container_is_followed_again_without_duplicates(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        web = fake.create(applied(c.workload("Deployment", "web"), stream_logs=True))
        play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
        fake.append_pod_log("default", "web-1-0", "main", "boot 1", "crash 1")
        await arrived(uplink, "web-1-0", 2)
        fake.restart_container("default", "web-1-0", "main")
        fake.append_pod_log("default", "web-1-0", "main", "boot 2")
        await arrived(uplink, "web-1-0", 3)
        fake.restart_container("default", "web-1-0", "main")
        fake.append_pod_log("default", "web-1-0", "main", "boot 3", "fine")
        lines = await arrived(uplink, "web-1-0", 5)
        # Reopened streams (the restarts) never bring back what was shipped.
        assert len(log_requests(fake, "web-1-0")) >= 3
    assert lines == ["boot 1", "crash 1", "boot 2", "boot 3", "fine"]


async def test_pods_from_before_the_start_are_followed_from_then_on(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    web = fake.create(applied(c.workload("Deployment", "web"), stream_logs=True))
    play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
    fake.append_pod_log("default", "web-1-0", "main", "old 1", "old 2")
    uplink = RecordingUplink()
    async with shipping(fake, cluster, settings.agent, uplink):
        fake.append_pod_log("default", "web-1-0", "main", "new")
        assert await arrived(uplink, "web-1-0", 1) == ["new"]
    assert "sinceTime=" in log_requests(fake, "web-1-0")[0]


async def test_rate_limit_reports_the_true_count(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    config = msgspec.structs.replace(settings.agent, pod_log_lines_per_second=5)
    uplink = RecordingUplink()
    async with shipping(fake, cluster, config, uplink):
        web = fake.create(applied(c.workload("Deployment", "web"), stream_logs=True))
        play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
        fake.append_pod_log("default", "web-1-0", "main", *(f"line {i}" for i in range(25)))
        [gap] = await eventually(lambda: uplink.bodies(channel.LOG_GAP), timeout=10)
    assert lines_of(uplink, "web-1-0") == [f"line {i}" for i in range(5)]
    gap = msgspec.convert(gap, channel.LogGapBody, strict=False)
    assert (gap.reason, gap.dropped_count, gap.stack_id) == ("rate_limit", 20, STACK)
    assert gap.since_ts == stamps(fake, "web-1-0")[5]


async def test_a_refusing_channel_loses_lines_instead_of_keeping_them(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    uplink = RecordingUplink()
    uplink.accepting = False
    async with shipping(fake, cluster, settings.agent, uplink):
        web = fake.create(applied(c.workload("Deployment", "web"), stream_logs=True))
        play.pods(play.child(web, "ReplicaSet", "web-1"), 1)
        fake.append_pod_log("default", "web-1-0", "main", *(f"lost {i}" for i in range(50)))
        await eventually(lambda: uplink.offered >= 50, timeout=10, what="50 offers")
        uplink.accepting = True
        fake.append_pod_log("default", "web-1-0", "main", "after")
        assert await arrived(uplink, "web-1-0", 1) == ["after"]
    assert lines_of(uplink, "web-1-0") == ["after"]


async def test_tails_end_with_their_pod_or_its_opt_in(
    fake: FakeKubeApiServer, cluster: KubeCluster, play: c.Controllers, settings: Settings
) -> None:
    web = fake.create(applied(c.workload("Deployment", "web")))
    rs = play.child(web, "ReplicaSet", "web-1")
    opted_in = []
    for name in ("one", "two"):
        body = c.bare_pod(name)
        body["metadata"]["ownerReferences"] = [c.owner_reference(rs)]
        body["metadata"]["annotations"] = {STREAM_LOGS_ANNOTATION: "true"}
        opted_in.append(fake.create(body))
    uplink = RecordingUplink()
    streams = Streams(cluster.client.config)
    owners = StackOwners(cluster.client, Discovery(cluster.client), AGENT, OwnerCache(100, 300))
    shipper = PodLogShipper(owners, streams, uplink, AGENT, lines_per_second=100)
    watch = asyncio.create_task(list_and_watch(cluster.client, streams, "/api/v1/pods", shipper))
    try:
        await eventually(lambda: shipper.tails == 2, timeout=10, what="two tails")
        fake.delete("Pod", "one")
        await eventually(lambda: shipper.tails == 1, timeout=10, what="one tail")
        two = fake.get("Pod", "two")
        assert two is not None
        two["metadata"]["annotations"] = {}
        pods = fake.cluster.type_for("v1", "Pod")
        fake.cluster.update(pods, "default", "two", two, WriteOptions("test"))
        await eventually(lambda: shipper.tails == 0, timeout=10, what="no tails")
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await shipper.aclose()
        await streams.aclose()
