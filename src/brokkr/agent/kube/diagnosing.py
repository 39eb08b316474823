"""On-demand diagnostics of one deployment object: its pods, their events and log tails.

Only what the deployment object applied is looked at, in the namespaces it was applied to
(flaw 3): the pods of each applied workload as ``workloads.pods_of`` finds them (the workload's
own selector and ownership, never a guessed label), the events whose ``involvedObject`` is one
of the applied objects, their ReplicaSets or Jobs, or their pods (one field-selected LIST per
object, so a busy namespace's other events are neither read nor reported), and the last lines of
every container's log, of the previous instance too when the container restarted.

Everything is bounded: at most ``MAX_PODS`` pods (the first found, in apply order), the newest
``max_events`` events, ``log_bytes`` per log tail, and ``max_bytes`` for the three JSON
documents together; what does not fit is cut with an explicit ``[truncated]`` marker. The
documents are encoded by msgspec, so they are valid JSON whatever the cluster holds (flaw 21).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.kube.workloads import has_pods, pods_of
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import Diagnosis
from brokkr.agent.settings import AgentSection
from brokkr.common import wire
from brokkr.common.wire.diagnostics import PREVIOUS_SUFFIX

Obj = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

# Pods described per deployment object: enough for any workload one looks at by hand, and a
# DaemonSet on a thousand nodes does not turn into a thousand log reads.
MAX_PODS = 50
TRUNCATED = "[truncated]"
# Kubernetes API calls in flight at once for one collection.
_CONCURRENCY = 8
# Longest condition or event message kept: a message is a sentence, not a document.
_MESSAGE_CHARS = 1024
_PAGE_SIZE = "500"
# Events read about one object at most (pages of _PAGE_SIZE): repetitions are counted in one
# event, so more means an event storm whose first thousands say it all.
_MAX_EVENT_PAGES = 4
# The intermediate children ``workloads.pods_of`` finds, by the applied workload's kind.
_CHILD_KINDS = {"Deployment": "ReplicaSet", "CronJob": "Job"}
# The least a shortened log tail keeps besides its marker; with less room, no tails at all.
_MIN_TAIL = 64


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    log_lines: int = 100
    log_bytes: int = 64 * 1024
    max_events: int = 50
    max_bytes: int = 1024 * 1024

    @classmethod
    def of(cls, agent: AgentSection) -> Limits:
        return cls(
            log_lines=agent.diagnostics_log_lines,
            log_bytes=agent.diagnostics_log_bytes,
            max_events=agent.diagnostics_max_events,
            max_bytes=agent.diagnostics_max_bytes,
        )


class Collector:
    """The agent's ``CollectDiagnostics``."""

    def __init__(self, client: KubeClient, limits: Limits) -> None:
        self.client = client
        self.limits = limits

    async def __call__(self, objects: Sequence[ObjectRef]) -> Diagnosis:
        return await diagnose(self.client, objects, self.limits)


class _Pod(msgspec.Struct, frozen=True):
    owner: str
    obj: Obj


async def diagnose(client: KubeClient, refs: Sequence[ObjectRef], limits: Limits) -> Diagnosis:
    """Collect the diagnostics of the objects ``refs`` (what one deployment object applied).
    Raises ``KubeError`` when the pods cannot be listed; an unreadable log is reported in its
    place, unreadable events of one object are left out."""
    pods, involved = await _find_pods(client, refs)
    statuses = [pod_status(pod.obj, owner=pod.owner) for pod in pods]
    involved += [_identity(pod.obj, "Pod") for pod in pods]
    events = await _events(client, involved, limits.max_events)
    tails = await _log_tails(client, [pod.obj for pod in pods], limits)
    return fit(statuses, events, tails, max_bytes=limits.max_bytes)


async def _find_pods(
    client: KubeClient, refs: Sequence[ObjectRef]
) -> tuple[list[_Pod], list[tuple[str, str, str]]]:
    """The pods of the applied workloads (each once, at most ``MAX_PODS``), and the
    (namespace, kind, name) of the applied objects and of their ReplicaSets or Jobs."""
    involved = [(ref.namespace, ref.kind, ref.name) for ref in refs]
    pods: dict[tuple[str, str], _Pod] = {}
    for ref in refs:
        if not has_pods(ref) or len(pods) >= MAX_PODS:
            continue
        found = await pods_of(client, ref)
        child_kind = _CHILD_KINDS.get(ref.kind)
        if child_kind is not None:
            involved += [_identity(child, child_kind) for child in found.children]
        for pod in found.pods:
            namespace, _, name = _identity(pod, "Pod")
            key = namespace, name
            if len(pods) < MAX_PODS and key not in pods:
                pods[key] = _Pod(f"{ref.kind}/{ref.name}", pod)
    return list(pods.values()), involved


def _identity(obj: Obj, kind: str) -> tuple[str, str, str]:
    """(namespace, kind, name); the kind is given: the items of a LIST carry none."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), kind, str(meta.get("name"))


# --- pod statuses ----------------------------------------------------------------------------


def pod_status(pod: Obj, *, owner: str | None) -> wire.PodStatus:
    """A pod as the result describes it; a container the kubelet has not reported yet (the pod
    is not scheduled) is listed with state ``Unknown``."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers: list[wire.ContainerStatus] = []
    for init, spec_key, status_key in (
        (True, "initContainers", "initContainerStatuses"),
        (False, "containers", "containerStatuses"),
    ):
        reported = {c.get("name"): c for c in status.get(status_key) or []}
        for container in spec.get(spec_key) or []:
            name = container.get("name")
            containers.append(_container_status(str(name), reported.get(name), init=init))
    return wire.PodStatus(
        name=str(meta.get("name")),
        namespace=str(meta.get("namespace") or ""),
        phase=str(status.get("phase") or "Unknown"),
        conditions=[
            wire.PodCondition(
                condition_type=str(c.get("type")),
                status=str(c.get("status")),
                reason=c.get("reason"),
                message=_short(c.get("message")),
            )
            for c in status.get("conditions") or []
        ],
        containers=containers,
        owner=owner,
    )


def _container_status(name: str, reported: Obj | None, *, init: bool) -> wire.ContainerStatus:
    if reported is None:
        return wire.ContainerStatus(
            name=name, ready=False, restart_count=0, state="Unknown", init=init
        )
    state_name, reason, message = _state(reported.get("state") or {})
    last = (reported.get("lastState") or {}).get("terminated") or {}
    return wire.ContainerStatus(
        name=name,
        ready=bool(reported.get("ready")),
        restart_count=int(reported.get("restartCount") or 0),
        state=state_name,
        state_reason=reason,
        state_message=_short(message),
        last_state_reason=last.get("reason"),
        init=init,
    )


def _state(state: Obj) -> tuple[str, str | None, str | None]:
    if "running" in state:
        started = (state["running"] or {}).get("startedAt")
        return "Running", None, f"Started at {started}" if started else None
    for key, label in (("waiting", "Waiting"), ("terminated", "Terminated")):
        if key in state:
            detail = state[key] or {}
            return label, detail.get("reason"), detail.get("message")
    return "Unknown", None, None


def _short(message: Any) -> str | None:
    if message is None:
        return None
    text = str(message)
    return text if len(text) <= _MESSAGE_CHARS else f"{text[:_MESSAGE_CHARS]} {TRUNCATED}"


# --- events ----------------------------------------------------------------------------------


async def _events(
    client: KubeClient, involved: Iterable[tuple[str, str, str]], max_events: int
) -> list[wire.DiagnosticEvent]:
    """The newest ``max_events`` events about ``involved``, newest first."""

    async def about(identity: tuple[str, str, str]) -> list[Obj]:
        try:
            return await _events_about(client, *identity)
        except KubeError:
            # Events are context: the pods and logs are still worth reporting without them.
            return []

    # An applied bare Pod is also one of the pods: each object is asked about once.
    unique_objects = list(dict.fromkeys(involved))
    found = [event for batch in await _bounded(about, unique_objects) for event in batch]
    unique = {(event.get("metadata") or {}).get("uid") or id(event): event for event in found}
    newest = sorted(unique.values(), key=_event_time, reverse=True)[:max_events]
    return [_event(event) for event in newest]


async def _events_about(client: KubeClient, namespace: str, kind: str, name: str) -> list[Obj]:
    # Events about cluster-scoped objects are recorded in "default", as the API server does.
    path = f"/api/v1/namespaces/{quote(namespace or 'default')}/events"
    params = {
        "fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}",
        "limit": _PAGE_SIZE,
    }
    found: list[Obj] = []
    for _ in range(_MAX_EVENT_PAGES):
        page = await client.get_json(path, params)
        found += [item for item in page.get("items") or [] if isinstance(item, dict)]
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            break
        params["continue"] = token
    return found


def _event_time(event: Obj) -> str:
    """When the event last happened, as an RFC 3339 string (they sort as times do); events
    without any time sort oldest."""
    series = event.get("series") or {}
    meta = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or meta.get("creationTimestamp")
        or ""
    )


def _event(event: Obj) -> wire.DiagnosticEvent:
    involved = event.get("involvedObject") or {}
    count = event.get("count") or (event.get("series") or {}).get("count")
    return wire.DiagnosticEvent(
        event_type=event.get("type"),
        reason=event.get("reason"),
        message=_short(event.get("message")),
        involved_object=str(involved.get("name") or "unknown"),
        involved_kind=involved.get("kind"),
        namespace=(event.get("metadata") or {}).get("namespace"),
        first_timestamp=event.get("firstTimestamp") or event.get("eventTime"),
        last_timestamp=_event_time(event) or None,
        count=int(count) if count is not None else None,
    )


# --- logs ------------------------------------------------------------------------------------


async def _log_tails(client: KubeClient, pods: Sequence[Obj], limits: Limits) -> wire.LogTails:
    """Every container's last lines (init containers included), and its previous instance's
    when it restarted; a log that cannot be read maps to ``Error: <reason>``."""
    wanted: list[tuple[str, str, str, bool]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        restarted = {
            c.get("name")
            for key in ("initContainerStatuses", "containerStatuses")
            for c in status.get(key) or []
            if int(c.get("restartCount") or 0) > 0
        }
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            name = str(container.get("name"))
            for previous in (False, True) if name in restarted else (False,):
                wanted.append((str(meta.get("namespace")), str(meta.get("name")), name, previous))

    async def read(entry: tuple[str, str, str, bool]) -> str:
        namespace, pod, container, previous = entry
        try:
            return await _log_tail(client, namespace, pod, container, previous, limits)
        except KubeError as exc:
            return f"Error: {exc}"

    texts = await _bounded(read, wanted)
    return {
        f"{pod}/{container}{PREVIOUS_SUFFIX if previous else ''}": text
        for (_, pod, container, previous), text in zip(wanted, texts, strict=True)
    }


async def _log_tail(
    client: KubeClient, namespace: str, pod: str, container: str, previous: bool, limits: Limits
) -> str:
    """The first ``log_bytes`` of the last ``log_lines`` lines: the API server cuts at
    ``limitBytes`` (one byte more than kept, so a cut shows), and so does the client, whatever
    the server did."""
    params = {
        "container": container,
        "tailLines": str(limits.log_lines),
        "limitBytes": str(limits.log_bytes + 1),
    }
    if previous:
        params["previous"] = "true"
    path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log"
    text, cut = await client.get_text(path, params, limit_bytes=limits.log_bytes)
    return f"{text}\n{TRUNCATED}" if cut else text


async def _bounded(call: Callable[[T], Awaitable[R]], items: Iterable[T]) -> list[R]:
    """``call`` on every item, at most ``_CONCURRENCY`` at a time, results in order."""
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(item: T) -> R:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


# --- the size bound --------------------------------------------------------------------------


def fit(
    statuses: Sequence[wire.PodStatus],
    events: Sequence[wire.DiagnosticEvent],
    tails: Mapping[str, str],
    *,
    max_bytes: int,
) -> Diagnosis:
    """The three documents in at most ``max_bytes`` together. Pods and events (newest first)
    take at most half: the oldest events go first, then the last pods. Log tails share the
    rest; the longest are shortened first, each keeping its newest part after a
    ``[truncated]`` line. Whatever is cut, each document stays valid JSON."""
    kept_statuses, kept_events = list(statuses), list(events)
    pods_doc, events_doc = _encode(kept_statuses), _encode(kept_events)
    while len(pods_doc) + len(events_doc) > max_bytes // 2 and (kept_events or kept_statuses):
        if kept_events:
            kept_events.pop()
            events_doc = _encode(kept_events)
        else:
            kept_statuses.pop()
            pods_doc = _encode(kept_statuses)
    tails_doc = _fit_tails(dict(tails), max_bytes - len(pods_doc) - len(events_doc))
    return Diagnosis(
        pod_statuses=pods_doc.decode(), events=events_doc.decode(), log_tails=tails_doc.decode()
    )


def _encode(items: Sequence[msgspec.Struct]) -> bytes:
    return msgspec.json.encode(items)


def _fit_tails(tails: dict[str, str], budget: int) -> bytes:
    """``tails`` encoded in at most ``budget`` bytes (at least 2, ``{}``): the longest tails
    are cut to an equal share, shorter ones kept whole."""
    encoded = msgspec.json.encode(tails)
    if len(encoded) <= budget:
        return encoded
    keys_size = len(msgspec.json.encode(dict.fromkeys(tails, "")))
    room = budget - keys_size
    if room < len(tails) * _MIN_TAIL:
        return b"{}"
    sizes = {key: len(msgspec.json.encode(text)) - 2 for key, text in tails.items()}
    share = _equal_share(sorted(sizes.values()), room)
    return msgspec.json.encode(
        {
            key: text if sizes[key] <= share else _keep_end(text, share)
            for key, text in tails.items()
        }
    )


def _equal_share(sizes: Sequence[int], room: int) -> int:
    """The largest cap such that ``sum(min(size, cap)) <= room`` (``sizes`` ascending)."""
    for index, size in enumerate(sizes):
        share = room // (len(sizes) - index)
        if size > share:
            return share
        room -= size
    return sizes[-1] if sizes else 0


def _keep_end(text: str, size: int) -> str:
    """The newest part of ``text`` under a ``[truncated]`` line, encoding to at most ``size``
    bytes inside its JSON quotes."""
    marker = f"{TRUNCATED}\n"
    room = size - len(msgspec.json.encode(marker)) + 2
    low, high = 0, len(text)
    # The shortest start index whose suffix fits (encoded length falls as the start grows).
    while low < high:
        middle = (low + high) // 2
        if len(msgspec.json.encode(text[middle:])) - 2 <= room:
            high = middle
        else:
            low = middle + 1
    return marker + text[low:]
