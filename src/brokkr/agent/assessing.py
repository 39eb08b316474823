"""How healthy an applied deployment object is, from its workloads and their pods. Pure.

Each workload gets a status from its own status (rollout) and its pods (faults); the
deployment object takes the worst: failing > degraded > unknown > healthy (never the last
pod's verdict, flaw 14). A deployment object without workloads (only ConfigMaps, Services,
custom resources) is ``healthy`` with zero pods: its objects exist, which is all that can be
said of them.

A pod *fault* is a condition name in the summary:

- a container waiting for one of ``WAITING_FAULTS`` (``ImagePullBackOff``, ``ErrImagePull``,
  ``CrashLoopBackOff``, ``CreateContainerConfigError``, ...), an init container's as
  ``InitContainer:<reason>``;
- a container terminated (now, or last time: ``lastState``) as ``OOMKilled``, or now as
  ``Error`` or ``ContainerCannotRun``;
- ``Unschedulable`` (Pending, PodScheduled False for that reason); ``PodFailed`` (phase Failed).

Per workload:

- gone from the cluster: failing (``NotFound``); its API call failed: unknown (``KubeAPIError``).
- Deployment, ReplicaSet, StatefulSet, DaemonSet: no replicas wanted (a DaemonSet without
  nodes): healthy. With faults (pods', or its own ``ProgressDeadlineExceeded`` or
  ``ReplicaFailure`` reason): failing when none of its pods is Ready, degraded when some are.
  Without faults: healthy once the rollout is complete (observedGeneration caught up, updated
  and available replicas as wanted, no old pods left: ``kubectl rollout status``), else
  degraded (``RolloutInProgress``: pods starting, old pods going).
- Job: Complete: healthy (failed attempts before do not count). Failed: failing, with the Job's
  reason (``BackoffLimitExceeded``, ...). Running with faults: failing when none of its pods is
  Ready, else degraded. Running without faults: unknown (``JobRunning``), its outcome is not
  known yet. Suspended: healthy.
- CronJob: its newest Job's verdict, except that running is healthy; no Job yet: healthy.
- bare Pod: Succeeded or Ready: healthy. Failed: failing. Faults: failing when not Ready, else
  degraded. Otherwise (starting): degraded (``PodNotReady``).

So a Deployment whose every pod is in ImagePullBackOff or CrashLoopBackOff is ``failing``; with
some pods still serving it is ``degraded``. Any pod in phase Unknown (its node lost) turns a
healthy verdict into ``unknown`` (``PodPhaseUnknown``).

The summary is bounded to what the broker accepts: at most ``MAX_CONDITIONS`` conditions of
``MAX_CONDITION_CHARS``, ``MAX_RESOURCES`` resources (workloads first, then the pods that
explain their status) with messages of at most ``MAX_MESSAGE_CHARS``, and ``MAX_SUMMARY_BYTES``
of JSON in all (resources are dropped from the end until it fits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from brokkr.common import wire

Obj = Mapping[str, Any]

WAITING_FAULTS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
        "ContainerCannotRun",
    }
)
TERMINATED_FAULTS = frozenset({"OOMKilled", "Error", "ContainerCannotRun"})
ROLLOUT_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})
# Within the broker's bounds on a summary (brokkr.broker.domain.health), with room to spare.
MAX_CONDITIONS = 32
# Conditions are reasons (``CrashLoopBackOff``): short; together at most half the bytes.
MAX_CONDITION_CHARS = 128
MAX_RESOURCES = 100
MAX_MESSAGE_CHARS = 512
MAX_SUMMARY_BYTES = 8 * 1024 - 256
# Worst first.
PRECEDENCE: tuple[wire.HealthStatus, ...] = ("failing", "degraded", "unknown", "healthy")


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One workload's verdict: ``resources`` holds its own entry, then its pods that explain it."""

    status: wire.HealthStatus
    conditions: list[str]
    resources: list[wire.ResourceHealth]
    pods_ready: int = 0
    pods_total: int = 0


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    status: wire.HealthStatus
    summary: wire.HealthSummary


class _Pod(msgspec.Struct, kw_only=True):
    name: str
    namespace: str
    ready: bool
    phase: str
    faults: list[str]
    message: str | None


def worst(statuses: Iterable[wire.HealthStatus]) -> wire.HealthStatus:
    present = set(statuses)
    return next((status for status in PRECEDENCE if status in present), "healthy")


def assess(kind: str, workload: Obj, pods: Sequence[Obj], children: Sequence[Obj] = ()) -> Finding:
    """The verdict on one live workload of ``kind`` with its pods (and a Deployment's
    ReplicaSets or a CronJob's Jobs as ``children``)."""
    # A bare Pod is its own pod, whatever the caller found.
    seen = [_pod(workload)] if kind == "Pod" else [_pod(pod) for pod in pods]
    if kind == "CronJob":
        status, conditions, message, seen = _cronjob(children, pods)
    else:
        status, conditions, message = _verdict(kind, workload, seen)
    if status == "healthy" and any(pod.phase == "Unknown" for pod in seen):
        status, conditions = "unknown", [*conditions, "PodPhaseUnknown"]
    meta = workload.get("metadata") or {}
    entry = wire.ResourceHealth(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        ready=status == "healthy",
        message=_clip(message),
    )
    explaining = [
        wire.ResourceHealth(
            kind="Pod", name=pod.name, namespace=pod.namespace, ready=False, message=pod.message
        )
        for pod in seen
        if (pod.faults or not pod.ready) and pod.phase != "Succeeded"
    ]
    return Finding(
        status=status,
        conditions=conditions,
        resources=[entry, *explaining],
        pods_ready=sum(pod.ready for pod in seen),
        pods_total=len(seen),
    )


def missing(kind: str, name: str, namespace: str) -> Finding:
    """An applied workload no longer in the cluster."""
    entry = wire.ResourceHealth(
        kind=kind, name=name, namespace=namespace, ready=False, message="not found in the cluster"
    )
    return Finding(status="failing", conditions=["NotFound"], resources=[entry])


def unreadable(kind: str, name: str, namespace: str, error: str) -> Finding:
    """A workload whose state the API server would not tell."""
    entry = wire.ResourceHealth(
        kind=kind, name=name, namespace=namespace, ready=False, message=_clip(error)
    )
    return Finding(status="unknown", conditions=["KubeAPIError"], resources=[entry])


def combine(findings: Sequence[Finding]) -> Assessment:
    """The deployment object's verdict: the worst workload's status, every condition once (in
    order of appearance), workloads' entries before their pods', within the broker's bounds."""
    conditions = list(
        dict.fromkeys(c[:MAX_CONDITION_CHARS] for f in findings for c in f.conditions)
    )
    entries = [f.resources[0] for f in findings if f.resources]
    pods = [r for f in findings for r in f.resources[1:]]
    summary = wire.HealthSummary(
        pods_ready=sum(f.pods_ready for f in findings),
        pods_total=sum(f.pods_total for f in findings),
        conditions=conditions[:MAX_CONDITIONS],
        resources=(entries + pods)[:MAX_RESOURCES] or None,
    )
    return Assessment(status=worst(f.status for f in findings), summary=_fitted(summary))


def _fitted(summary: wire.HealthSummary) -> wire.HealthSummary:
    resources = list(summary.resources or [])
    while resources and len(msgspec.json.encode(summary)) > MAX_SUMMARY_BYTES:
        resources.pop()
        summary = msgspec.structs.replace(summary, resources=resources or None)
    return summary


def _verdict(
    kind: str, workload: Obj, pods: list[_Pod]
) -> tuple[wire.HealthStatus, list[str], str]:
    faults = [fault for pod in pods for fault in pod.faults]
    any_ready = any(pod.ready for pod in pods)
    if kind == "Job":
        return _job(workload, faults, any_ready)
    if kind == "Pod":
        [pod] = pods
        if pod.phase == "Succeeded":
            return "healthy", [], "succeeded"
        if pod.faults:
            return ("degraded" if pod.ready else "failing"), pod.faults, pod.message or ""
        if pod.phase == "Unknown":
            return "unknown", ["PodPhaseUnknown"], "phase Unknown"
        return ("healthy", [], "ready") if pod.ready else ("degraded", ["PodNotReady"], pod.phase)
    complete, desired, progress = _rollout(kind, workload)
    faults = _workload_faults(workload) + faults
    if desired == 0:
        return "healthy", [], progress
    if faults:
        return ("degraded" if any_ready else "failing"), faults, progress
    if complete:
        return "healthy", [], progress
    return "degraded", ["RolloutInProgress"], progress


def _rollout(kind: str, workload: Obj) -> tuple[bool, int, str]:
    """(rollout complete, replicas wanted, "2/3 available" or so), as kubectl rollout status."""
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    generation = (workload.get("metadata") or {}).get("generation") or 0
    observed = status.get("observedGeneration")
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        total = desired
    else:
        desired = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas") or 0)
        available = int(status.get("availableReplicas") or status.get("readyReplicas") or 0)
        total = int(status.get("replicas") or 0)
        if kind == "ReplicaSet":
            updated = total
    complete = (
        observed is not None
        and int(observed) >= int(generation)
        and updated >= desired
        and available >= desired
        # Old pods still running: the rollout is not over.
        and total <= updated
    )
    if kind == "StatefulSet" and status.get("updateRevision"):
        complete = complete and status.get("currentRevision") == status.get("updateRevision")
    return complete, desired, f"{available}/{desired} available"


def _workload_faults(workload: Obj) -> list[str]:
    faults = []
    for condition in (workload.get("status") or {}).get("conditions") or []:
        reason = str(condition.get("reason") or "")
        kind, state = condition.get("type"), condition.get("status")
        if kind == "Progressing" and state == "False" and reason == "ProgressDeadlineExceeded":
            faults.append(reason)
        elif kind == "ReplicaFailure" and state == "True":
            faults.append(reason or "ReplicaFailure")
    return faults


def _job(
    workload: Obj, faults: list[str], any_ready: bool
) -> tuple[wire.HealthStatus, list[str], str]:
    status = workload.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    succeeded, failed = int(status.get("succeeded") or 0), int(status.get("failed") or 0)
    counts = f"{succeeded} succeeded, {failed} failed"
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return "healthy", [], f"complete ({counts})"
    failure = conditions.get("Failed") or conditions.get("FailureTarget")
    if failure is not None:
        reason = str(failure.get("reason") or "JobFailed")
        return "failing", [reason], _join(reason, failure.get("message"))
    if (workload.get("spec") or {}).get("suspend"):
        return "healthy", [], "suspended"
    if faults:
        return ("degraded" if any_ready else "failing"), faults, f"running ({counts})"
    return "unknown", ["JobRunning"], f"running ({counts})"


def _cronjob(
    jobs: Sequence[Obj], pods: Sequence[Obj]
) -> tuple[wire.HealthStatus, list[str], str, list[_Pod]]:
    """The newest Job's verdict (on its own pods), but a running one is healthy."""
    if not jobs:
        return "healthy", [], "no job has run yet", []
    newest = max(
        jobs,
        key=lambda j: (
            (j.get("metadata") or {}).get("creationTimestamp") or "",
            (j.get("metadata") or {}).get("name") or "",
        ),
    )
    uid = (newest.get("metadata") or {}).get("uid")
    own = [_pod(pod) for pod in pods if _owned_by(pod, uid)]
    status, conditions, message = _verdict("Job", newest, own)
    name = (newest.get("metadata") or {}).get("name")
    if status == "unknown" and conditions == ["JobRunning"]:
        status, conditions = "healthy", []
    return status, conditions, f"last job {name}: {message}", own


def _owned_by(obj: Obj, uid: object) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def _pod(pod: Obj) -> _Pod:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    phase = str(status.get("phase") or "Pending")
    faults: list[str] = []
    messages: list[str] = []
    for prefix, containers in (
        ("InitContainer:", status.get("initContainerStatuses") or []),
        ("", status.get("containerStatuses") or []),
    ):
        for container in containers:
            for reason, message in _container_faults(container):
                faults.append(prefix + reason)
                messages.append(_join(f"{container.get('name')}: {reason}", message))
    scheduled = conditions.get("PodScheduled") or {}
    unschedulable = (
        scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
    )
    if phase == "Pending" and unschedulable:
        faults.append("Unschedulable")
        messages.append(_join("Unschedulable", scheduled.get("message")))
    if phase == "Failed":
        faults.append("PodFailed")
        messages.append(
            _join(f"PodFailed: {status.get('reason') or 'failed'}", status.get("message"))
        )
    return _Pod(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        ready=ready,
        phase=phase,
        faults=list(dict.fromkeys(faults)),
        message=_clip("; ".join(messages))
        if messages
        else (None if ready else f"not ready ({phase})"),
    )


def _container_faults(container: Obj) -> list[tuple[str, str | None]]:
    state, last = container.get("state") or {}, container.get("lastState") or {}
    found: list[tuple[str, str | None]] = []
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in WAITING_FAULTS:
        found.append((str(waiting["reason"]), waiting.get("message")))
    terminated = state.get("terminated") or {}
    if terminated.get("reason") in TERMINATED_FAULTS:
        found.append((str(terminated["reason"]), terminated.get("message")))
    before = last.get("terminated") or {}
    if before.get("reason") == "OOMKilled" and terminated.get("reason") != "OOMKilled":
        found.append(("OOMKilled", before.get("message") or "last run was OOMKilled"))
    return found


def _join(head: str, detail: object) -> str:
    return f"{head}: {detail}" if detail else head


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 1] + "…"
