"""The ASGI application: URL routing, request decoding, responses, watch streams, faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import yaml

from . import discovery, errors
from .errors import ApiError
from .faults import Faults
from .resources import ResourceType
from .schemas import FIELD_VALIDATIONS
from .selectors import Predicate, field_selector, label_selector
from .store import Cluster, LogView, WriteOptions, render_log

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/apply-patch+yaml": "apply",
    "application/strategic-merge-patch+json": "strategic",
}


@dataclass
class RecordedRequest:
    """One request the fake received, and the status it answered."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    params: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status, json.dumps(payload, separators=(",", ":")).encode(), headers=headers or {}
        )


@dataclass
class Target:
    """A resource URL, resolved."""

    rt: ResourceType
    namespace: str | None  # None: the URL had no namespace (cluster scope or all namespaces)
    name: str | None
    sub: str | None


class KubeApiApp:
    """ASGI app over a :class:`Cluster`."""

    def __init__(self, cluster: Cluster, faults: Faults, *, token: str | None) -> None:
        self.cluster = cluster
        self.faults = faults
        self.token = token
        self.server_address = "127.0.0.1:0"
        self.stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._log_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._requests.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        req = RecordedRequest(scope["method"], scope["path"], query, headers, body, params=params)
        with self._log_lock:
            self._requests.append(req)
        try:
            response = await self._handle(req, receive, send)
        except ApiError as exc:
            response = Response.of(exc.code, exc.body(), exc.headers)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake: answer like a real panic
            logger.exception("fake kube-apiserver failed on %s %s", req.method, req.path)
            error = errors.internal(f"{type(exc).__name__}: {exc}")
            response = Response.of(500, error.body())
        if response is None:  # a watch stream answered already
            return
        req.status = response.status
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": _headers(
                    response.content_type,
                    {**response.headers, "content-length": str(len(response.body))},
                ),
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    async def _inject_faults(self, req: RecordedRequest) -> None:
        target = req.path + (f"?{req.query}" if req.query else "")
        for fault in self.faults.take(req.method, target):
            await self._sleep(fault.seconds)
            if fault.action == "status":
                raise errors.for_status(fault.status, fault.retry_after)
            if fault.action == "timeout":
                raise errors.for_status(504)

    async def _handle(self, req: RecordedRequest, receive: Receive, send: Send) -> Response | None:
        await self._inject_faults(req)
        self.cluster.tick()
        if req.path == "/version":
            return Response.of(200, discovery.VERSION_INFO)
        if req.path in PUBLIC_PATHS:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if self.token is not None and req.headers.get("authorization") != f"Bearer {self.token}":
            raise errors.unauthorized()
        segments = [s for s in req.path.split("/") if s] or [""]
        if segments[0] == "api" and len(segments) == 1:
            return Response.of(200, discovery.api_versions(self.server_address))
        if segments[0] == "api" and segments[1] == "v1":
            return await self._group_version("", "v1", segments[2:], req, receive, send)
        if segments[0] == "apis" and len(segments) <= 2:
            return self._groups(segments[1:])
        if segments[0] == "apis":
            return await self._group_version(
                segments[1], segments[2], segments[3:], req, receive, send
            )
        if segments == [""]:
            return Response.of(200, {"paths": ["/api", "/api/v1", "/apis", *PUBLIC_PATHS]})
        raise errors.no_such_resource()

    def _groups(self, group: list[str]) -> Response:
        """``/apis`` or ``/apis/<group>``."""
        if not group:
            return Response.of(200, discovery.group_list(self.cluster.types()))
        doc = discovery.group(self.cluster.types(), group[0])
        if doc is None:
            raise errors.no_such_resource()
        return Response.of(200, doc)

    async def _group_version(
        self,
        group: str,
        version: str,
        rest: list[str],
        req: RecordedRequest,
        receive: Receive,
        send: Send,
    ) -> Response | None:
        if not rest:
            if req.method != "GET":
                raise errors.method_not_allowed()
            if self.faults.discovery_broken(f"{group}/{version}" if group else version):
                raise errors.service_unavailable()
            doc = discovery.resource_list(self.cluster.types(), group, version)
            if doc is None:
                raise errors.no_such_resource()
            return Response.of(200, doc)
        target = self._resolve(group, version, rest)
        if target.name is None:
            if req.method == "GET" and req.params.get("watch") in ("1", "true"):
                await self._watch(target, req, receive, send)
                return None
            return self._collection(target, req)
        if target.sub == "log":
            return await self._pod_log(target, req, receive, send)
        return self._item(target, req)

    def _resolve(self, group: str, version: str, rest: list[str]) -> Target:
        members = {
            t.plural: t for t in self.cluster.types() if (t.group, t.version) == (group, version)
        }
        if not members:
            raise errors.no_such_resource()
        namespaced_form = len(rest) >= 3 and rest[0] == "namespaces"
        if namespaced_form and rest[2] in members and members[rest[2]].namespaced:
            if len(rest) > 5:
                raise errors.no_such_resource()
            rt, namespace, tail = members[rest[2]], rest[1], rest[3:]
        else:
            rt, namespace, tail = members.get(rest[0]), None, rest[1:]  # type: ignore[assignment]
            if rt is None or len(rest) > 3 or (rt.namespaced and tail):
                raise errors.no_such_resource()
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        if sub is not None and (sub not in ("status", "log") or sub not in rt.subresources):
            raise errors.no_such_resource()
        return Target(rt, namespace, name, sub)

    # --- collections and items -----------------------------------------------------------------

    def _predicates(self, target: Target, params: dict[str, str]) -> list[Predicate]:
        return [
            label_selector(params.get("labelSelector")),
            field_selector(params.get("fieldSelector"), target.rt.kind),
        ]

    def _collection(self, target: Target, req: RecordedRequest) -> Response:
        rt, params = target.rt, req.params
        if req.method == "GET":
            limit = params.get("limit") or "0"
            listing = self.cluster.list_objects(
                rt,
                target.namespace,
                self._predicates(target, params),
                limit=int(limit) if limit.isdigit() else 0,
                continue_token=params.get("continue", ""),
            )
            return Response.of(200, listing)
        if rt.namespaced and target.namespace is None:
            raise errors.method_not_allowed()
        namespace = target.namespace or ""
        if req.method == "POST":
            body = _decode_body(req, rt)
            opts = self._write_options(req, dry_run=_dry_run(params))
            created = self.cluster.create(rt, namespace, body, opts)
            return Response.of(201, created, _warning_headers(opts))
        if req.method == "DELETE":
            options = _delete_options(req)
            listing = self.cluster.delete_collection(
                rt, target.namespace, self._predicates(target, params), options
            )
            return Response.of(200, listing)
        raise errors.method_not_allowed()

    def _item(self, target: Target, req: RecordedRequest) -> Response:
        rt, namespace, name = target.rt, target.namespace or "", target.name or ""
        params, sub = req.params, target.sub or ""
        if req.method == "GET":
            return Response.of(200, self.cluster.get(rt, namespace, name))
        if req.method == "PUT":
            body = _decode_body(req, rt)
            opts = self._write_options(req, dry_run=_dry_run(params), subresource=sub)
            updated = self.cluster.update(rt, namespace, name, body, opts)
            return Response.of(200, updated, _warning_headers(opts))
        if req.method == "PATCH":
            return self._patch(target, req)
        if req.method == "DELETE" and not sub:
            options = _delete_options(req)
            return Response.of(
                200, self.cluster.delete(rt, namespace, name, options, dry_run=_dry_run(options))
            )
        raise errors.method_not_allowed()

    def _patch(self, target: Target, req: RecordedRequest) -> Response:
        rt, params = target.rt, req.params
        content_type = req.content_type.split(";")[0].strip().lower()
        accepted = tuple(
            t for t in PATCH_TYPES if not (rt.custom and PATCH_TYPES[t] == "strategic")
        )
        if content_type not in accepted:
            raise errors.unsupported_media_type(content_type, accepted)
        patch_type = PATCH_TYPES[content_type]
        manager = params.get("fieldManager", "")
        if patch_type == "apply":
            if not manager:
                raise errors.invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "fieldManager",
                            "Required value: is required for apply patch",
                        )
                    ],
                )
            try:
                body = yaml.safe_load(req.body.decode() or "null")
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
        else:
            if "force" in params:
                raise errors.invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [
                        (
                            "FieldValueForbidden",
                            "force",
                            "Forbidden: may not be specified for non-apply patch",
                        )
                    ],
                )
            body = _json(req.body, rt)
        opts = self._write_options(req, dry_run=_dry_run(params), subresource=target.sub or "")
        obj, created = self.cluster.patch(
            rt,
            target.namespace or "",
            target.name or "",
            patch_type,
            body,
            opts,
            force=params.get("force", "").lower() in ("true", "1"),
        )
        return Response.of(201 if created else 200, obj, _warning_headers(opts))

    def _write_options(
        self, req: RecordedRequest, *, dry_run: bool, subresource: str = ""
    ) -> WriteOptions:
        manager = req.params.get("fieldManager") or _default_manager(req.headers)
        if len(manager) > 128:
            raise errors.invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [("FieldValueTooLong", "fieldManager", "Too long: may not be more than 128 bytes")],
            )
        validation = req.params.get("fieldValidation") or "Warn"
        if validation not in FIELD_VALIDATIONS:
            raise errors.invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [
                    (
                        "FieldValueNotSupported",
                        "fieldValidation",
                        f'Unsupported value: "{validation}": supported values: "", "Ignore", '
                        '"Strict", "Warn"',
                    )
                ],
            )
        return WriteOptions(
            manager=manager,
            dry_run=dry_run,
            subresource=subresource,
            field_validation=validation,
        )

    # --- pods/log --------------------------------------------------------------------------------

    async def _pod_log(
        self, target: Target, req: RecordedRequest, receive: Receive, send: Send
    ) -> Response | None:
        if req.method != "GET":
            raise errors.method_not_allowed()
        params = req.params
        tail = _non_negative(params.get("tailLines"), "tailLines")
        limit = _positive(params.get("limitBytes"), "limitBytes")
        since = _log_since(params)
        timestamps = params.get("timestamps") in ("1", "true")
        namespace, name = target.namespace or "", target.name or ""
        container, view = self.cluster.log_view(
            namespace,
            name,
            params.get("container"),
            previous=params.get("previous") in ("1", "true"),
        )
        text = render_log(
            view.lines, tail=tail, limit_bytes=limit, timestamps=timestamps, since=since
        )
        if params.get("follow") not in ("1", "true") or params.get("previous") in ("1", "true"):
            return Response(200, text.encode(errors="surrogateescape"), "text/plain")
        await self._follow_log(req, receive, send, text, (namespace, name, container), view, limit)
        return None

    async def _follow_log(
        self,
        req: RecordedRequest,
        receive: Receive,
        send: Send,
        text: str,
        where: tuple[str, str, str],
        view: LogView,
        limit: int | None,
    ) -> None:
        """Stream ``text``, then each line the container writes, until the pod is gone, the
        container restarts, ``limitBytes`` are sent, or the client leaves."""
        req.status = 200
        await send(
            {"type": "http.response.start", "status": 200, "headers": _headers("text/plain")}
        )
        timestamps = req.params.get("timestamps") in ("1", "true")
        sent, position = 0, len(view.lines)
        async with _disconnection(receive) as disconnected:
            while not (disconnected.is_set() or self.stopping.is_set()):
                chunk = text.encode(errors="surrogateescape")
                if limit is not None:
                    chunk = chunk[: limit - sent]
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
                await asyncio.sleep(0.02)
                lines = self.cluster.log_lines_after(*where, view.instance, position)
                if lines is None:
                    break
                position += len(lines)
                text = render_log(lines, timestamps=timestamps)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    # --- watch -----------------------------------------------------------------------------------

    async def _watch(
        self, target: Target, req: RecordedRequest, receive: Receive, send: Send
    ) -> None:
        rt, params = target.rt, req.params
        predicates = self._predicates(target, params)
        timeout = float(params.get("timeoutSeconds") or 1800)
        requested = params.get("resourceVersion") or ""
        with self.cluster.lock:
            if requested in ("", "0"):
                initial = self.cluster.select(rt, target.namespace, predicates)
                position = self.cluster.resource_version
            else:
                initial, position = [], int(requested) if requested.isdigit() else 0
        req.status = 200
        await send(
            {"type": "http.response.start", "status": 200, "headers": _headers("application/json")}
        )
        async with _disconnection(receive) as disconnected:
            for obj in initial:
                await _send_event(send, "ADDED", obj)
            deadline = time.monotonic() + timeout
            while not (disconnected.is_set() or self.stopping.is_set()):
                if time.monotonic() >= deadline:
                    break
                self.cluster.tick()  # a CRD may become Established while a client waits
                position = await self._send_events(target, predicates, position, send)
                await asyncio.sleep(0.02)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_events(
        self, target: Target, predicates: list[Predicate], position: int, send: Send
    ) -> int:
        """Stream the events after ``position`` that the watch selects; the new position."""
        rt = target.rt
        for event in self.cluster.events_after(position):
            position = event.rv
            if event.storage_key != rt.storage_key:
                continue
            if target.namespace is not None and event.namespace != target.namespace:
                continue
            obj = self.cluster.render(rt, event.obj)
            if all(p(obj) for p in predicates):
                await _send_event(send, event.type, obj)
        return position


async def _send_event(send: Send, kind: str, obj: Obj) -> None:
    line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
    await send({"type": "http.response.body", "body": line.encode(), "more_body": True})


def _headers(content_type: str, extra: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-type": content_type,
        "cache-control": "no-cache, private",
        "audit-id": str(uuid.uuid4()),
        **{k.lower(): v for k, v in (extra or {}).items()},
    }
    return [(k.encode(), v.encode()) for k, v in headers.items()]


def _warning_headers(opts: WriteOptions) -> dict[str, str]:
    """Warnings the way the real server sends them: ``299 - "<text>"`` each."""
    if not opts.warnings:
        return {}
    return {"Warning": ", ".join(f"299 - {json.dumps(text)}" for text in opts.warnings)}


def _default_manager(headers: dict[str, str]) -> str:
    """Like the real server: the user agent up to its first ``/``."""
    agent = headers.get("user-agent", "")
    return agent.split("/")[0] or "unknown"


def _json(body: bytes, rt: ResourceType) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {rt.kind}): couldn't get "
            f"version/kind; json parse error: {exc}"
        ) from None


def _decode_body(req: RecordedRequest, rt: ResourceType) -> Any:
    content_type = req.content_type.split(";")[0].strip().lower()
    if content_type in ("", "application/json", "*/*"):
        return _json(req.body, rt)
    if content_type == "application/yaml":
        try:
            return yaml.safe_load(req.body.decode() or "null")
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
    raise errors.unsupported_media_type(content_type, BODY_TYPES)


def _dry_run(params: dict[str, Any]) -> bool:
    value = params.get("dryRun")
    if isinstance(value, list):
        return "All" in value
    if value not in (None, "", "All"):
        raise errors.invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            [("FieldValueNotSupported", "dryRun", f'Unsupported value: "{value}"')],
        )
    return value == "All"


def _delete_options(req: RecordedRequest) -> Obj:
    options: Obj = {}
    if req.body.strip():
        body = _json(req.body, _DELETE_OPTIONS)
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be an object")
        options.update(body)
    for key in ("propagationPolicy", "dryRun", "gracePeriodSeconds"):
        if key in req.params:
            options[key] = req.params[key]
    if "orphanDependents" in req.params:
        options["orphanDependents"] = req.params["orphanDependents"] == "true"
    return options


_DELETE_OPTIONS = ResourceType(
    group="", version="v1", kind="DeleteOptions", plural="", namespaced=False
)


def _non_negative(value: str | None, name: str) -> int | None:
    """A ``pods/log`` count parameter; the real server refuses negative or unparsable ones."""
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(
            f'{name}: strconv.ParseInt: parsing "{value}": invalid syntax'
        ) from None
    if number < 0:
        raise errors.bad_request(f"{name}: Invalid value: {number}: must be >= 0")
    return number


def _positive(value: str | None, name: str) -> int | None:
    number = _non_negative(value, name)
    if number == 0:
        raise errors.bad_request(f"{name}: Invalid value: 0: must be greater than 0")
    return number


def _log_since(params: dict[str, str]) -> int | None:
    """``sinceTime`` (RFC 3339) or ``sinceSeconds`` as nanoseconds since the epoch; the real
    server refuses both at once, a bad time, or seconds below 1."""
    since_time, since_seconds = params.get("sinceTime"), params.get("sinceSeconds")
    if since_time and since_seconds:
        raise errors.invalid(
            "PodLogOptions",
            "",
            "",
            [
                (
                    "FieldValueForbidden",
                    "",
                    "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                )
            ],
        )
    if since_time:
        try:
            moment = datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise errors.bad_request(
                f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse'
            ) from None
        if moment.tzinfo is None:
            raise errors.bad_request(f'parsing time "{since_time}": missing time zone')
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    seconds = _positive(since_seconds, "sinceSeconds")
    if seconds is None:
        return None
    return time.time_ns() - seconds * 1_000_000_000


@contextlib.asynccontextmanager
async def _disconnection(receive: Receive) -> AsyncIterator[asyncio.Event]:
    """An event set once the client of a streaming response has gone."""
    disconnected = asyncio.Event()

    async def wait_for_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.ensure_future(wait_for_disconnect())
    try:
        yield disconnected
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
