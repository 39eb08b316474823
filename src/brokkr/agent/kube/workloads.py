"""The pods of an applied workload, found the way its controller finds them (flaw 3).

Never by a label the agent guesses: a workload's pods are those its own ``spec.selector``
selects in the workload's own namespace, and that its controller owns. Per kind:

- Deployment: its ReplicaSets (selected by the Deployment's selector and owned by it through
  ``ownerReferences``), then the pods the selector selects that one of them controls;
- StatefulSet, DaemonSet, ReplicaSet, Job: the pods the selector selects that it controls
  (a Job without a selector, as the API server never leaves one, falls back to ownership);
- CronJob: its Jobs (owned by it), then each Job's pods as above;
- a bare Pod: itself.

A selected pod with no controller at all is kept (its controller would adopt it); one that
another controller owns is not (two workloads whose selectors overlap do not share pods).
Other kinds have no pods. Lists are paged (``limit``/``continue``), so a namespace with
thousands of pods is never read in one answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.manifests import ObjectRef

Obj = dict[str, Any]

# The kinds that have pods, by (API group, kind).
WORKLOAD_KINDS = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("", "Pod"),
    }
)
_PAGE_SIZE = "500"
_SELECTOR_OPERATORS = {"In": "in", "NotIn": "notin"}


class WorkloadPods(msgspec.Struct, frozen=True, kw_only=True):
    """``workload``: the live object, None when it is gone. ``children``: the ReplicaSets of a
    Deployment or the Jobs of a CronJob (empty for other kinds)."""

    workload: Obj | None
    pods: list[Obj]
    children: list[Obj] = msgspec.field(default_factory=list)


def has_pods(ref: ObjectRef) -> bool:
    return (ref.group, ref.kind) in WORKLOAD_KINDS


async def pods_of(client: KubeClient, ref: ObjectRef) -> WorkloadPods:
    """The live workload ``ref`` names, its pods and intermediate children; no pods for kinds
    without any. Raises ``KubeError`` when the API server cannot answer."""
    if not has_pods(ref):
        return WorkloadPods(workload=None, pods=[])
    workload = await _get(client, ref)
    if workload is None:
        return WorkloadPods(workload=None, pods=[])
    if ref.kind == "Pod":
        return WorkloadPods(workload=workload, pods=[workload])
    namespace = ref.namespace
    if ref.kind == "Deployment":
        sets = [
            rs
            for rs in await _list(client, "apps/v1", "replicasets", namespace, workload)
            if _controlled_by(rs, [workload])
        ]
        pods = [
            pod
            for pod in await _list(client, "v1", "pods", namespace, workload)
            if _controlled_by(pod, sets, orphans=True)
        ]
        return WorkloadPods(workload=workload, pods=pods, children=sets)
    if ref.kind == "CronJob":
        jobs = [
            job
            for job in await _list(client, "batch/v1", "jobs", namespace, None)
            if _controlled_by(job, [workload])
        ]
        pods = []
        for job in jobs:
            pods += await _own_pods(client, namespace, job)
        return WorkloadPods(workload=workload, pods=pods, children=jobs)
    return WorkloadPods(workload=workload, pods=await _own_pods(client, namespace, workload))


def label_selector(selector: Mapping[str, Any] | None) -> str | None:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) as a ``labelSelector`` query
    value; None when it selects nothing definite (missing or empty: never "everything")."""
    if not selector:
        return None
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(sorted(str(v) for v in expression.get("values") or []))
        if operator in _SELECTOR_OPERATORS:
            parts.append(f"{key} {_SELECTOR_OPERATORS[operator]} ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            # An operator this agent does not know: better no pods than the wrong ones.
            return None
    return ",".join(parts) or None


async def _own_pods(client: KubeClient, namespace: str, owner: Obj) -> list[Obj]:
    """The pods ``owner`` (a StatefulSet, DaemonSet, ReplicaSet or Job) selects and controls;
    without a selector, the pods it controls."""
    selected = _selector_of(owner) is not None
    return [
        pod
        for pod in await _list(client, "v1", "pods", namespace, owner)
        if _controlled_by(pod, [owner], orphans=selected)
    ]


def _selector_of(workload: Obj | None) -> str | None:
    if workload is None:
        return None
    return label_selector((workload.get("spec") or {}).get("selector"))


async def _get(client: KubeClient, ref: ObjectRef) -> Obj | None:
    path = f"{_base(ref.api_version)}/namespaces/{quote(ref.namespace)}/{_plural(ref.kind)}"
    try:
        found = await client.get_json(f"{path}/{quote(ref.name)}")
    except KubeError as exc:
        if exc.not_found:
            return None
        raise
    return found if isinstance(found, dict) else None


async def _list(
    client: KubeClient, api_version: str, plural: str, namespace: str, selecting: Obj | None
) -> list[Obj]:
    """Every ``plural`` in ``namespace`` that ``selecting``'s selector selects (all of them
    when ``selecting`` is None; ownership then decides)."""
    params: dict[str, str] = {"limit": _PAGE_SIZE}
    if selecting is not None:
        selector = _selector_of(selecting)
        if selector is not None:
            params["labelSelector"] = selector
    path = f"{_base(api_version)}/namespaces/{quote(namespace)}/{plural}"
    found: list[Obj] = []
    while True:
        page = await client.get_json(path, params)
        found += [item for item in page.get("items") or [] if isinstance(item, dict)]
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return found
        params["continue"] = token


def _controlled_by(obj: Obj, owners: Iterable[Obj], *, orphans: bool = False) -> bool:
    """Whether one of ``owners`` controls ``obj`` (or ``obj`` has no controller and
    ``orphans`` are accepted)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    controllers = [ref for ref in refs if ref.get("controller")] or refs
    if not controllers:
        return orphans
    uids = {(owner.get("metadata") or {}).get("uid") for owner in owners}
    return any(ref.get("uid") in uids for ref in controllers)


def _base(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _plural(kind: str) -> str:
    # Every workload kind pluralises regularly (deployments, statefulsets, ..., pods).
    return f"{kind.lower()}s"
