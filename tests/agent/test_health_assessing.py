"""The health rules on plain objects: pod faults, each workload kind, precedence, bounds."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from brokkr.agent import assessing
from brokkr.common import wire
from tests.agent import controllers as c

Obj = dict[str, Any]


def live(manifest: Obj, status: Obj | None = None, generation: int = 1) -> Obj:
    obj = {
        **manifest,
        "metadata": {**manifest["metadata"], "uid": f"uid-{manifest['metadata']['name']}"},
    }
    obj["metadata"]["generation"] = generation
    if status is not None:
        obj["status"] = status
    return obj


def pod(name: str, status: Obj, owner: Obj | None = None) -> Obj:
    body = c.bare_pod(name)
    body["status"] = status
    if owner is not None:
        body["metadata"]["ownerReferences"] = [
            {"uid": owner["metadata"]["uid"], "controller": True}
        ]
    return body


def deployment(status: Obj | None, replicas: int = 2) -> Obj:
    return live(c.workload("Deployment", "web", replicas=replicas), status)


def assess(
    kind: str, workload: Obj, pods: list[Obj], children: list[Obj] | None = None
) -> assessing.Finding:
    return assessing.assess(kind, workload, pods, children or [])


# --- pod faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(assessing.WAITING_FAULTS))
def test_every_pod_in_a_waiting_fault_fails_the_deployment(reason: str) -> None:
    pods = [pod(f"web-{i}", c.waiting_pod(reason, "it broke")) for i in range(2)]

    found = assess("Deployment", deployment(c.available(0)), pods)

    assert found.status == "failing"
    assert found.conditions == [reason, reason]  # combine() de-duplicates
    assert (found.pods_ready, found.pods_total) == (0, 2)
    assert found.resources[0] == wire.ResourceHealth(
        kind="Deployment", name="web", namespace="default", ready=False, message="0/2 available"
    )
    assert found.resources[1].message == f"main: {reason}: it broke"


def test_some_pods_still_serving_is_degraded() -> None:
    pods = [pod("web-0", c.ready_pod()), pod("web-1", c.waiting_pod("CrashLoopBackOff"))]

    found = assess("Deployment", deployment(c.available(1) | {"availableReplicas": 1}), pods)

    assert (found.status, found.conditions) == ("degraded", ["CrashLoopBackOff"])
    assert [r.name for r in found.resources] == ["web", "web-1"]


@pytest.mark.parametrize(
    ("status", "condition"),
    [
        (
            {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "main", "state": {"terminated": {"reason": "OOMKilled"}}}
                ],
            },
            "OOMKilled",
        ),
        (
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "main",
                        "state": {"running": {}},
                        "lastState": {"terminated": {"reason": "OOMKilled"}},
                    }
                ],
            },
            "OOMKilled",
        ),
        (
            {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "main", "state": {"terminated": {"reason": "Error"}}}
                ],
            },
            "Error",
        ),
        (
            {
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "init", "state": {"waiting": {"reason": "ErrImagePull"}}}
                ],
            },
            "InitContainer:ErrImagePull",
        ),
        (
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes",
                    }
                ],
            },
            "Unschedulable",
        ),
        ({"phase": "Failed", "reason": "Evicted"}, "PodFailed"),
    ],
)
def test_pod_faults(status: Obj, condition: str) -> None:
    found = assess("Deployment", deployment(c.available(0), replicas=1), [pod("web-0", status)])

    assert (found.status, found.conditions) == ("failing", [condition])


def test_a_pending_pod_without_a_fault_is_a_rollout_in_progress() -> None:
    pending = {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}
        ],
    }

    found = assess(
        "Deployment",
        deployment({"observedGeneration": 1, "replicas": 1}, 1),
        [pod("web-0", pending)],
    )

    assert (found.status, found.conditions) == ("degraded", ["RolloutInProgress"])
    assert found.resources[1].message == "not ready (Pending)"


# --- rollouts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (c.available(2), "healthy"),
        (None, "degraded"),  # no controller has looked at it yet
        (c.available(2, generation=0), "degraded"),  # a newer spec not observed yet
        (c.available(2) | {"updatedReplicas": 1}, "degraded"),
        (c.available(2) | {"availableReplicas": 1}, "degraded"),
        (c.available(2) | {"replicas": 3}, "degraded"),  # an old pod still running
    ],
)
def test_deployment_rollout(status: Obj | None, expected: str) -> None:
    pods = [pod(f"web-{i}", c.ready_pod()) for i in range(2)]

    found = assess("Deployment", deployment(status), pods)

    assert found.status == expected
    assert found.conditions == ([] if expected == "healthy" else ["RolloutInProgress"])


def test_a_deployment_past_its_progress_deadline_fails() -> None:
    status = {
        "observedGeneration": 1,
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ],
    }

    found = assess("Deployment", deployment(status), [])

    assert (found.status, found.conditions) == ("failing", ["ProgressDeadlineExceeded"])


def test_replica_failure_is_a_fault() -> None:
    status = {
        "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]
    }

    found = assess("ReplicaSet", live(c.workload("ReplicaSet", "rs"), status), [])

    assert (found.status, found.conditions) == ("failing", ["FailedCreate"])


def test_no_replicas_wanted_is_healthy() -> None:
    assert assess("Deployment", deployment(None, replicas=0), []).status == "healthy"
    daemons = live(c.workload("DaemonSet", "ds"), {"desiredNumberScheduled": 0})
    assert assess("DaemonSet", daemons, []).status == "healthy"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {
                "observedGeneration": 1,
                "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 3,
            },
            "healthy",
        ),
        (
            {
                "observedGeneration": 1,
                "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 2,
                "numberAvailable": 3,
            },
            "degraded",
        ),
        (
            {
                "observedGeneration": 1,
                "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 2,
            },
            "degraded",
        ),
    ],
)
def test_daemonset_rollout(status: Obj, expected: str) -> None:
    assert assess("DaemonSet", live(c.workload("DaemonSet", "ds"), status), []).status == expected


@pytest.mark.parametrize(
    ("revisions", "expected"),
    [
        ({"currentRevision": "a", "updateRevision": "a"}, "healthy"),
        ({"currentRevision": "a", "updateRevision": "b"}, "degraded"),
    ],
)
def test_statefulset_rollout(revisions: Obj, expected: str) -> None:
    status = c.available(1) | revisions
    del status["availableReplicas"]  # readyReplicas stands in on older servers
    sts = live(c.workload("StatefulSet", "db"), status)

    assert assess("StatefulSet", sts, [pod("db-0", c.ready_pod())]).status == expected


# --- jobs ------------------------------------------------------------------------------------


def test_a_completed_job_is_healthy_despite_failed_attempts() -> None:
    job = live(c.job("migrate"), c.job_complete() | {"failed": 1})
    pods = [pod("migrate-a", {"phase": "Failed"}), pod("migrate-b", c.succeeded_pod())]

    found = assess("Job", job, pods)

    assert (found.status, found.conditions) == ("healthy", [])
    assert found.resources[0].message == "complete (1 succeeded, 1 failed)"
    assert [r.name for r in found.resources] == ["migrate", "migrate-a"]


def test_a_failed_job_fails_with_its_reason() -> None:
    status = {
        "failed": 6,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        ],
    }

    found = assess("Job", live(c.job("migrate"), status), [])

    assert (found.status, found.conditions) == ("failing", ["BackoffLimitExceeded"])
    assert (
        found.resources[0].message
        == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    )


def test_a_running_job() -> None:
    job = live(c.job("migrate"), {"active": 1})
    assert assess("Job", job, [pod("m", c.ready_pod())]).status == "unknown"
    stuck = assess("Job", job, [pod("m", c.waiting_pod("ImagePullBackOff"))])
    assert (stuck.status, stuck.conditions) == ("failing", ["ImagePullBackOff"])
    suspended = live(c.job("migrate"), {})
    suspended["spec"]["suspend"] = True
    assert assess("Job", suspended, []).status == "healthy"


def test_a_cronjob_is_judged_by_its_newest_job() -> None:
    cron = live(c.cronjob("nightly"))
    old = live(
        c.job("nightly-1"),
        {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
    )
    old["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    new = live(c.job("nightly-2"), {"active": 1})
    new["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    old_pod = pod("old", {"phase": "Failed"}, owner=old)

    running = assess("CronJob", cron, [old_pod, pod("new", c.ready_pod(), owner=new)], [old, new])
    assert (running.status, running.pods_total) == ("healthy", 1)

    stuck = assess(
        "CronJob", cron, [old_pod, pod("new", c.waiting_pod("ErrImagePull"), owner=new)], [new, old]
    )
    assert (stuck.status, stuck.conditions) == ("failing", ["ErrImagePull"])

    assert assess("CronJob", cron, [old_pod], [old]).status == "failing"
    assert assess("CronJob", cron, [], []).status == "healthy"


# --- bare pods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "conditions"),
    [
        (c.ready_pod(), "healthy", []),
        (c.succeeded_pod(), "healthy", []),
        ({"phase": "Failed"}, "failing", ["PodFailed"]),
        (c.waiting_pod("CrashLoopBackOff"), "failing", ["CrashLoopBackOff"]),
        (
            c.ready_pod()
            | {
                "containerStatuses": [
                    {"name": "main", "lastState": {"terminated": {"reason": "OOMKilled"}}}
                ]
            },
            "degraded",
            ["OOMKilled"],
        ),
        ({"phase": "Unknown"}, "unknown", ["PodPhaseUnknown"]),
        ({"phase": "Pending"}, "degraded", ["PodNotReady"]),
    ],
)
def test_bare_pod(status: Obj, expected: str, conditions: list[str]) -> None:
    solo = pod("solo", status)

    found = assess("Pod", solo, [solo])

    assert (found.status, found.conditions) == (expected, conditions)
    assert found.pods_total == 1


def test_a_pod_lost_with_its_node_makes_a_healthy_workload_unknown() -> None:
    pods = [pod("web-0", c.ready_pod()), pod("web-1", {"phase": "Unknown"})]

    found = assess("Deployment", deployment(c.available(2)), pods)

    assert (found.status, found.conditions) == ("unknown", ["PodPhaseUnknown"])


# --- combining -------------------------------------------------------------------------------


def finding(status: wire.HealthStatus, *conditions: str) -> assessing.Finding:
    entry = wire.ResourceHealth(
        kind="Deployment", name=status, namespace="ns", ready=status == "healthy"
    )
    return assessing.Finding(
        status=status, conditions=list(conditions), resources=[entry], pods_ready=1, pods_total=2
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["healthy", "failing", "degraded"], "failing"),
        (["degraded", "healthy", "unknown"], "degraded"),
        (["healthy", "unknown"], "unknown"),
        (["healthy"], "healthy"),
        ([], "healthy"),  # only ConfigMaps and the like: they exist
    ],
)
def test_the_worst_status_wins_in_any_order(
    statuses: list[wire.HealthStatus], expected: str
) -> None:
    assert assessing.combine([finding(s) for s in statuses]).status == expected
    assert assessing.combine([finding(s) for s in reversed(statuses)]).status == expected


def test_combined_summary() -> None:
    result = assessing.combine([finding("failing", "B", "A"), finding("degraded", "A", "C")])

    assert result.summary.conditions == ["B", "A", "C"]
    assert (result.summary.pods_ready, result.summary.pods_total) == (2, 4)
    assert [r.name for r in result.summary.resources or []] == ["failing", "degraded"]
    empty = assessing.combine([])
    assert empty.summary == wire.HealthSummary(pods_ready=0, pods_total=0)


def test_the_summary_stays_within_the_broker_s_bounds() -> None:
    pods = [pod(f"web-{i:03}", c.waiting_pod("CrashLoopBackOff", "x" * 5000)) for i in range(300)]
    many = [
        assessing.Finding(status="failing", conditions=[f"Reason{i}" + "y" * 300], resources=[])
        for i in range(100)
    ]

    result = assessing.combine([assess("Deployment", deployment(c.available(0)), pods), *many])

    summary = result.summary
    assert result.status == "failing"
    assert len(summary.conditions) == assessing.MAX_CONDITIONS
    assert all(len(c) <= assessing.MAX_CONDITION_CHARS for c in summary.conditions)
    assert summary.resources is not None and 0 < len(summary.resources) <= assessing.MAX_RESOURCES
    assert summary.resources[0].kind == "Deployment"  # workloads are kept first
    assert all(len(r.message or "") <= assessing.MAX_MESSAGE_CHARS for r in summary.resources)
    assert len(msgspec.json.encode(summary)) <= assessing.MAX_SUMMARY_BYTES
    assert summary.pods_total == 300


def test_missing_and_unreadable_workloads() -> None:
    gone = assessing.missing("Deployment", "web", "ns")
    broken = assessing.unreadable("Job", "j", "ns", "Forbidden: " + "z" * 2000)

    assert (gone.status, gone.conditions) == ("failing", ["NotFound"])
    assert (broken.status, broken.conditions) == ("unknown", ["KubeAPIError"])
    assert len(broken.resources[0].message or "") == assessing.MAX_MESSAGE_CHARS
