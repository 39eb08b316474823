"""Pod log shipping (agent.md §11, fixing flaw 16): the log lines of opted-in pods of this
agent's stacks, offered to the channel as ``pod_log_line`` frames with the time the container
wrote them.

A pod qualifies when annotation ``brokkr.io/stream-logs: "true"`` is on the pod or on the stack
object owning it, and it belongs to a stack of this agent. Each of its containers (not the init
containers) gets a tail that follows the log and, whenever the stream ends (the container
exited or restarted, the connection dropped), reopens it from the last line seen: a restarted
container's new instance is followed from its beginning, and nothing is shipped twice. Pods
that existed when shipping started are followed from that moment (no replay of their past);
pods created later from their first line. Tails end when the pod is deleted or stops
qualifying, and at most ``MAX_TAILS`` run at once.

Per container at most ``pod_log_lines_per_second`` lines a second are shipped; the lines over
it are counted and reported in one ``log_gap`` once the second has passed. An offer the channel
refuses is lost (the channel counts its own gaps): nothing is buffered here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import UUID

from brokkr.agent.kube.errors import KubeError
from brokkr.agent.kube.stack_owners import StackOwners
from brokkr.agent.kube.streams import Streams
from brokkr.agent.outcomes import Uplink
from brokkr.agent.telemetry import (
    MAX_LINE_BYTES,
    Gap,
    LineBudget,
    from_nanoseconds,
    nanoseconds,
    parse_time,
    since_time,
    split_log_line,
    wants_logs,
)
from brokkr.common.wire import channel

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PATH = "/api/v1/pods"
MAX_TAILS = 200
# A followed log silent this long is reopened (from the last line seen): a connection the
# network dropped without a word is noticed.
IDLE_SECONDS = 300.0
# Between attempts to open a log that cannot be read yet (a container still starting, one in
# crash-loop back-off); a change of the pod cuts the wait short.
RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
# A finished pod's log is read to its end; if that keeps failing, its tail gives up.
FINAL_ATTEMPTS = 3
GAP_CHECK_SECONDS = 0.5
_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class _Where:
    agent_id: UUID
    stack_id: UUID
    namespace: str
    pod: str
    container: str


class Tail:
    """One container's log, followed until cancelled (or, for a finished pod, read to its end)."""

    def __init__(
        self,
        streams: Streams,
        uplink: Uplink,
        where: _Where,
        floor: int | None,
        budget: LineBudget,
        *,
        final: bool,
    ) -> None:
        self._streams = streams
        self._uplink = uplink
        self._where = where
        # Lines written before ``floor`` (nanoseconds) are not shipped; None: from the start.
        self._floor = floor
        self._last: int | None = None
        self.budget = budget
        self._poked = asyncio.Event()
        self._final = final
        self.task: asyncio.Task[None] | None = None

    def poke(self, *, final: bool) -> None:
        """The pod changed: try again now if waiting (a container may have (re)started);
        ``final``: the pod finished, its logs end."""
        self._final = self._final or final
        self._poked.set()

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def run(self) -> None:
        delay, failures = RETRY_MIN_SECONDS, 0
        while True:
            try:
                shipped = await self._follow()
            except KubeError as exc:
                if exc.not_found:
                    return
                log.debug("cannot follow the log of %s: %s", self._where, exc)
                failures += 1
                if self._final and failures >= FINAL_ATTEMPTS:
                    return
            else:
                if self._final:
                    return
                if shipped:
                    delay = RETRY_MIN_SECONDS
                    continue
            await self._pause(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._poked.wait(), seconds)
        self._poked.clear()

    async def _follow(self) -> int:
        """Ship the lines the log has after the last one shipped, until the stream ends; how
        many lines were new."""
        where = self._where
        params = {"container": where.container, "follow": "true", "timestamps": "true"}
        after = self._last if self._last is not None else self._floor
        if after is not None:
            params["sinceTime"] = since_time(after)
        path = (
            f"/api/v1/namespaces/{quote(where.namespace, safe='')}"
            f"/pods/{quote(where.pod, safe='')}/log"
        )
        new = 0
        async with self._streams.lines(
            path, params, max_line_bytes=MAX_LINE_BYTES + 64, idle_timeout=IDLE_SECONDS
        ) as lines:
            async for raw in lines:
                stamp, text = split_log_line(raw)
                if stamp is None:  # the kubelet stamps every line; be safe if one is not
                    stamp = max(time.time_ns(), (self._last or 0) + 1)
                if self._last is not None and stamp <= self._last:
                    continue
                if self._last is None and self._floor is not None and stamp < self._floor:
                    continue
                self._last = stamp
                new += 1
                self._ship(stamp, text)
        return new

    def _ship(self, stamp: int, text: str) -> None:
        written = from_nanoseconds(stamp)
        admitted, gap = self.budget.admit(written)
        if gap is not None:
            self.offer_gap(gap)
        if admitted:
            where = self._where
            body = channel.PodLogLineBody(
                agent_id=where.agent_id,
                stack_id=where.stack_id,
                namespace=where.namespace,
                pod=where.pod,
                container=where.container,
                ts=written,
                line=text,
            )
            self._uplink.offer(channel.frame(channel.POD_LOG_LINE, body))

    def offer_gap(self, gap: Gap) -> None:
        body = channel.LogGapBody(
            agent_id=self._where.agent_id,
            stack_id=self._where.stack_id,
            since_ts=gap.since,
            dropped_count=gap.dropped_count,
            reason="rate_limit",
        )
        self._uplink.offer(channel.frame(channel.LOG_GAP, body))


class PodLogShipper:
    """The ``WatchHandler`` of the Pods watch; ``report_gaps`` runs beside it."""

    def __init__(
        self,
        owners: StackOwners,
        streams: Streams,
        uplink: Uplink,
        agent_id: UUID,
        *,
        lines_per_second: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._owners = owners
        self._streams = streams
        self._uplink = uplink
        self._agent_id = agent_id
        self._lines_per_second = lines_per_second
        self._started = clock()
        # By (pod uid, container). A finished tail stays until its pod goes, so that later
        # changes of the pod do not start it again (and replay its log).
        self._tails: dict[tuple[str, str], Tail] = {}
        self._warned_full = False

    @property
    def tails(self) -> int:
        """How many tails are running."""
        return sum(1 for tail in self._tails.values() if tail.running)

    async def listed(self, items: list[Obj], *, first: bool) -> None:
        present = {_uid(pod) for pod in items}
        for uid in {uid for uid, _ in self._tails} - present:
            self._cancel(uid)
        for pod in items:
            await self._consider(pod, existing=first)

    async def changed(self, kind: str, obj: Obj) -> None:
        if kind == "DELETED":
            self._cancel(_uid(obj))
        elif kind in ("ADDED", "MODIFIED"):
            await self._consider(obj, existing=False)

    async def report_gaps(self) -> None:
        """Send the gap of each container whose second with dropped lines has passed, also
        when no further line comes to carry it. Runs until cancelled."""
        while True:
            await asyncio.sleep(GAP_CHECK_SECONDS)
            for tail in list(self._tails.values()):
                gap = tail.budget.due()
                if gap is not None:
                    tail.offer_gap(gap)

    async def aclose(self) -> None:
        """Stop every tail (their streams closed)."""
        tasks = [tail.task for tail in self._tails.values() if tail.task is not None]
        self._tails.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _consider(self, pod: Obj, *, existing: bool) -> None:
        uid = _uid(pod)
        if not uid:
            return
        owner = await self._owners.of_object(pod)
        if owner is None or not (wants_logs(pod) or owner.stream_logs):
            self._cancel(uid)
            return
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        final = (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES
        for container in spec.get("containers") or []:
            name = container.get("name") if isinstance(container, dict) else None
            if not isinstance(name, str) or not name:
                continue
            tail = self._tails.get((uid, name))
            if tail is not None:
                tail.poke(final=final)
                continue
            if self.tails >= MAX_TAILS:
                if not self._warned_full:
                    log.warning(
                        "already following %d pod logs, not following more (pod %s/%s)",
                        MAX_TAILS,
                        meta.get("namespace"),
                        meta.get("name"),
                    )
                    self._warned_full = True
                continue
            where = _Where(
                self._agent_id,
                owner.stack_id,
                str(meta.get("namespace") or ""),
                str(meta.get("name") or ""),
                name,
            )
            budget = LineBudget(self._lines_per_second)
            floor = self._floor(pod, existing)
            tail = Tail(self._streams, self._uplink, where, floor, budget, final=final)
            tail.task = asyncio.create_task(tail.run(), name=f"pod-log-{where.pod}-{name}")
            self._tails[(uid, name)] = tail

    def _floor(self, pod: Obj, existing: bool) -> int | None:
        """Pods already there when shipping started: from then on. Newer ones: everything."""
        if existing:
            return self._started
        created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
        started_second = self._started - self._started % 1_000_000_000
        if created is None or nanoseconds(created) < started_second:
            return self._started
        return None

    def _cancel(self, uid: str) -> None:
        for key in [key for key in self._tails if key[0] == uid]:
            task = self._tails.pop(key).task
            if task is not None:
                task.cancel()


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")
