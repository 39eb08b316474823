"""Request bodies at the edge: JSON routes take only JSON media types (415), and no JSON body is
decoded when it nests deeper than ``limits.max_json_depth`` (422), since the decoder recurses.
A label may be sent as a bare JSON string, which is checked here."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from brokkr.broker.domain import errors
from brokkr.broker.services.context import Context

S = TypeVar("S", bound=msgspec.Struct)

# The contents of JSON strings may hold any bracket; they are blanked before counting.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_RUNS = re.compile(rb"[\[{]+|[\]}]+")
_OPENERS = b"[{"


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    """``application/json`` or a structured ``application/*+json`` type (the reference too)."""
    kind = media_type(content_type)
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def too_deep(body: bytes, limit: int) -> bool:
    """Whether a JSON text opens more than ``limit`` arrays/objects inside one another.

    Counting the brackets first keeps ordinary bodies to two C-level scans; only a body with
    more brackets than the limit is walked, one bracket run at a time.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    structure = _STRING.sub(b'""', body)
    depth = 0
    for run in _BRACKET_RUNS.finditer(structure):
        width = run.end() - run.start()
        if structure[run.start()] in _OPENERS:
            depth += width
            if depth > limit:
                return True
        else:
            depth -= width
    return False


def ensure_shallow(ctx: Context, body: bytes) -> None:
    limit = ctx.settings.current.limits.max_json_depth
    if too_deep(body, limit):
        raise errors.NestingTooDeep(limit)


async def read_limited(
    request: Request[Any, Any, Any],
    *,
    allowed: int,
    too_large: Callable[[], errors.BrokerError],
) -> bytes:
    """The body, refused with ``too_large()`` as soon as it passes ``allowed`` bytes (declared
    or received): read from the stream, for routes whose limit is a reloadable setting."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > allowed:
        raise too_large()
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > allowed:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: Request[Any, Any, Any],
    ctx: Context,
    kind: type[S],
    *,
    allowed: int,
    too_large: Callable[[], errors.BrokerError],
) -> S:
    """A JSON body of a route whose size limit is a setting (read when the request arrives, so
    a reload applies to the next one) rather than the app's fixed limit: read from the stream
    and refused with ``too_large()`` as soon as it passes ``allowed`` bytes, then checked like
    every JSON body (415, depth) and decoded as ``kind`` (400 not JSON, 422 wrong shape)."""
    content_type = request.headers.get("content-type", "")
    if not is_json(content_type):
        raise errors.UnsupportedContentType(media_type(content_type))
    body = await read_limited(request, allowed=allowed, too_large=too_large)
    ensure_shallow(ctx, body)
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise errors.ValidationFailed({"body": str(exc)}) from exc
    except msgspec.DecodeError as exc:
        raise errors.InvalidJson(exc) from exc


async def json_only(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard for routes that decode a JSON ``data`` body; runs after authentication, so a bad PAK
    is still a 401 whatever the body, and before any role check, as in the reference."""
    if handler.parsed_data_field is None or not isinstance(connection, Request):
        return
    content_type = connection.headers.get("content-type", "")
    if not is_json(content_type):
        raise errors.UnsupportedContentType(media_type(content_type))
    ensure_shallow(connection.app.state.ctx, await connection.body())


def label_body(data: str | S, kind: type[S]) -> S:
    """A label sent as an object (``kind``) or as the bare string (the reference's form), checked
    here because Litestar drops the constraints of a constrained ``str`` inside a union (D14)."""
    if not isinstance(data, str):
        return data
    try:
        return msgspec.convert({"label": data}, kind)
    except msgspec.ValidationError as exc:
        raise errors.ValidationFailed({"label": str(exc)}) from exc
