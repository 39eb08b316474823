"""Pure parts of telemetry shipping (agent.md §10, §11): which stack an object belongs to, the
owner cache, event bodies, log-line splitting and timestamps, the per-container line budget.

No I/O; ``brokkr.agent.kube.event_shipping`` and ``brokkr.agent.kube.pod_logs`` do the watching.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from brokkr.agent.manifests import STACK_ANNOTATION, is_owned_by
from brokkr.common.wire.channel import InvolvedObject, K8sEventBody

# Users opt a pod into log shipping with this annotation on the pod or on its stack object.
STREAM_LOGS_ANNOTATION = "brokkr.io/stream-logs"
# Bounds on what one event or line may carry (the broker truncates to the same).
MAX_MESSAGE_CHARS = 4096
MAX_REASON_CHARS = 256
MAX_LINE_BYTES = 16 * 1024
# The kubelet's timestamp prefix: fixed-width RFC 3339 with nanoseconds, then one space.
_STAMP_CHARS = len("2024-01-01T00:00:00.000000000Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NANOS = 1_000_000_000


@dataclass(frozen=True)
class Owner:
    """The stack an object belongs to, and whether that stack object opted into log shipping."""

    stack_id: UUID
    stream_logs: bool


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def is_stack_object(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is what an agent applied for a stack (any agent's): owner references
    are not followed past it."""
    return STACK_ANNOTATION in _annotations(obj)


def own_stack(obj: Mapping[str, Any], agent_id: UUID) -> Owner | None:
    """The stack of an object this agent applied; None for another agent's, or a stack
    annotation that is not a UUID."""
    if not is_owned_by(obj, agent_id):
        return None
    try:
        stack_id = UUID(str(_annotations(obj).get(STACK_ANNOTATION)))
    except ValueError:
        return None
    return Owner(stack_id, wants_logs(obj))


def wants_logs(obj: Mapping[str, Any]) -> bool:
    return _annotations(obj).get(STREAM_LOGS_ANNOTATION) == "true"


def owner_references(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Usable owner references (uid, kind, apiVersion and name set), the controller first."""
    refs = [
        ref
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
        if isinstance(ref, Mapping)
        and all(
            isinstance(ref.get(k), str) and ref[k] for k in ("uid", "kind", "apiVersion", "name")
        )
    ]
    return sorted(refs, key=lambda ref: ref.get("controller") is not True)


class _Miss(enum.Enum):
    MISS = 0


MISS: Literal[_Miss.MISS] = _Miss.MISS


class OwnerCache:
    """uid → Owner (or None: not this agent's), least recently used evicted past ``capacity``,
    every entry forgotten ``ttl`` seconds after it was stored (annotations change, objects go)."""

    def __init__(
        self, capacity: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Owner | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, uid: str) -> Owner | None | Literal[_Miss.MISS]:
        entry = self._entries.get(uid)
        if entry is None:
            return MISS
        stored, owner = entry
        if self._clock() - stored >= self._ttl:
            del self._entries[uid]
            return MISS
        self._entries.move_to_end(uid)
        return owner

    def put(self, uid: str, owner: Owner | None) -> None:
        self._entries[uid] = (self._clock(), owner)
        self._entries.move_to_end(uid)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


# --- events ------------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (RFC 3339, any fraction), or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        # Python reads at most microseconds; the API writes up to nanoseconds.
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def observed_at(event: Mapping[str, Any], now: datetime) -> datetime:
    """When the event last happened: series.lastObservedTime (a repeated events.k8s.io-style
    event), eventTime, lastTimestamp, firstTimestamp, else ``now``."""
    series = event.get("series") or {}
    for value in (
        series.get("lastObservedTime") if isinstance(series, Mapping) else None,
        event.get("eventTime"),
        event.get("lastTimestamp"),
        event.get("firstTimestamp"),
    ):
        moment = parse_time(value)
        if moment is not None:
            return moment
    return now


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def involved_object(event: Mapping[str, Any]) -> InvolvedObject | None:
    """The event's involvedObject, or None when it names no object by uid."""
    involved = event.get("involvedObject")
    if not isinstance(involved, Mapping):
        return None
    fields = {k: involved.get(k) for k in ("apiVersion", "kind", "name", "uid")}
    if not all(isinstance(v, str) and v for v in fields.values()):
        return None
    namespace = involved.get("namespace")
    return InvolvedObject(
        api_version=str(fields["apiVersion"]),
        kind=str(fields["kind"]),
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        name=str(fields["name"]),
        uid=str(fields["uid"]),
    )


def k8s_event_body(
    event: Mapping[str, Any],
    involved: InvolvedObject,
    *,
    agent_id: UUID,
    stack_id: UUID,
    now: datetime,
) -> K8sEventBody:
    source = event.get("source") or {}
    component = source.get("component") if isinstance(source, Mapping) else None
    reporter = event.get("reportingComponent")
    named = component if isinstance(component, str) and component else reporter
    return K8sEventBody(
        agent_id=agent_id,
        stack_id=stack_id,
        observed_at=observed_at(event, now),
        reason=_text(event.get("reason"), MAX_REASON_CHARS),
        message=_text(event.get("message"), MAX_MESSAGE_CHARS),
        event_type=_text(event.get("type"), MAX_REASON_CHARS) or "Normal",
        source=named[:MAX_REASON_CHARS] if isinstance(named, str) and named else None,
        involved_object=involved,
    )


# --- log lines ---------------------------------------------------------------------------------


class LineSplitter:
    """Bytes of a stream into lines (ends and a trailing CR stripped), each at most
    ``max_bytes``: a longer line is cut there and its rest discarded, so no input, however it
    is broken, makes the buffer grow past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self._discarding:
                room = self._max - len(self._buffer)
                self._buffer += piece[:room]
                if len(piece) > room:
                    lines.append(bytes(self._buffer))
                    self._buffer.clear()
                    self._discarding = True
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                lines.append(bytes(self._buffer.removesuffix(b"\r")))
                self._buffer.clear()
            start = end + 1
        return lines

    def rest(self) -> bytes | None:
        """What the stream ended with after its last line end, if anything."""
        if not self._buffer:
            return None
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


def nanoseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def from_nanoseconds(stamp: int) -> datetime:
    return _EPOCH + timedelta(microseconds=stamp // 1000)


def since_time(stamp: int) -> str:
    """``sinceTime`` for a log request: the second of ``stamp``, rounded down (the API's time
    precision; the caller skips what it had already seen)."""
    return from_nanoseconds(stamp - stamp % _NANOS).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_log_line(raw: bytes) -> tuple[int | None, str]:
    """A ``timestamps=true`` log line: its stamp in nanoseconds since the epoch (None when it
    has none) and its text, cut to ``MAX_LINE_BYTES`` (invalid UTF-8 replaced)."""
    stamp: int | None = None
    head, space, rest = raw.partition(b" ")
    if space and len(head) >= len("2024-01-01T00:00:00Z"):
        stamp = _parse_nanoseconds(head.decode("ascii", errors="replace"))
    body = rest if stamp is not None else raw
    return stamp, body[:MAX_LINE_BYTES].decode(errors="replace")


def _parse_nanoseconds(text: str) -> int | None:
    if not text.endswith(("Z", "z")):
        return None
    base, dot, fraction = text[:-1].partition(".")
    if dot and not fraction.isdigit():
        return None
    try:
        moment = datetime.fromisoformat(base).replace(tzinfo=UTC)
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(seconds=1) * _NANOS + int(
        (fraction or "0")[:9].ljust(9, "0")
    )


@dataclass(frozen=True)
class Gap:
    """``dropped_count`` lines were dropped, the first of them written at ``since``."""

    dropped_count: int
    since: datetime


class LineBudget:
    """At most ``per_second`` lines in each one-second window of one container; the lines over
    it are counted, and the count (a true count) comes out once the window has passed."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_second = per_second
        self._clock = clock
        self._window = clock()
        self._used = 0
        self._dropped = 0
        self._first_dropped: datetime | None = None

    def admit(self, written: datetime) -> tuple[bool, Gap | None]:
        """Whether a line written at ``written`` may go, and the gap of the window that just
        ended, if it dropped any (to send before this line)."""
        gap = self.due()
        if self._used < self._per_second:
            self._used += 1
            return True, gap
        if self._dropped == 0:
            self._first_dropped = written
        self._dropped += 1
        return False, gap

    def due(self) -> Gap | None:
        """The gap of a window that has passed (once), and None otherwise."""
        now = self._clock()
        if now - self._window < 1.0:
            return None
        gap = (
            Gap(self._dropped, self._first_dropped)
            if self._dropped and self._first_dropped is not None
            else None
        )
        self._window, self._used, self._dropped, self._first_dropped = now, 0, 0, None
        return gap
