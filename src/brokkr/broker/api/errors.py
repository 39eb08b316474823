"""The one place failures become D2 JSON: domain errors, Litestar's own 4xx, and the rest (500)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from brokkr.broker.domain import errors
from brokkr.common import wire

log = logging.getLogger(__name__)

# Litestar's own 4xx other than those ``http_error`` turns into catalogue errors.
_CODES = {
    401: "unauthorized",
    403: "forbidden",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def _body(*, code: str, message: str, details: dict[str, Any] | None) -> wire.ErrorBody:
    return wire.ErrorBody(
        error=message,
        code=code,
        message=message,
        details=msgspec.UNSET if details is None else details,
    )


def body_of(error: errors.BrokerError) -> wire.ErrorBody:
    """The D2 body of ``error``; also written outside Litestar (CORS refusals, HTTP/1.1 400/408)."""
    return _body(code=error.code, message=error.message, details=error.details)


def render(
    status: int, *, code: str, message: str, details: dict[str, Any] | None = None
) -> Response[wire.ErrorBody]:
    headers = {"WWW-Authenticate": 'Bearer realm="brokkr"'} if status == 401 else None
    return Response(
        _body(code=code, message=message, details=details),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def broker_error(_: Request[Any, Any, Any], exc: errors.BrokerError) -> Response[wire.ErrorBody]:
    return render(exc.status, code=exc.code, message=exc.message, details=exc.details)


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[wire.ErrorBody]:
    problems = [
        p for p in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(p, dict)
    ]
    fields = dict(_readable(request, p) for p in problems)
    sources = {p.get("source") for p in problems}
    if sources and sources <= {"path", "query", "header"}:
        return broker_error(request, errors.InvalidParameter(fields))
    return broker_error(request, errors.ValidationFailed(fields))


# msgspec's messages, which name a regex or a type code, as (pattern, reason) for a reader.
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_REGEX = re.compile(r"^Expected `str` matching regex ")
_LENGTH = re.compile(r"^Expected `(?P<kind>\w+)` of length (?P<op>[<>]=?) (?P<bound>\d+)$")
_RANGE = re.compile(r"^Expected `(?:int|float)` (?P<op>[<>]=?) (?P<bound>-?[\d.]+)$")
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "uuid": "a UUID",
    "datetime": "an RFC 3339 date-time",
}
_UNITS = {"str": "characters", "array": "items", "object": "keys"}
_COMPARISONS = {"<=": "at most", ">=": "at least", "<": "less than", ">": "more than"}


def _readable(request: Request[Any, Any, Any], problem: dict[str, Any]) -> tuple[str, str]:
    """One Litestar/msgspec problem as (field path, a reason a user can act on)."""
    key = str(problem.get("key", ""))
    if problem.get("source") == "body" or key == "data":
        key = key.removeprefix("data").removeprefix(".")
    message = str(problem.get("message", ""))
    if found := _MISSING.match(message):
        return _join(key, found["name"]), "is required"
    if found := _UNKNOWN.match(message):
        return _join(key, found["name"]), "is not a known field"
    field = _field_type(request, problem.get("source"), key)
    if found := _ENUM.match(message):
        values = _allowed_values(field)
        allowed = f"; allowed: {', '.join(values)}" if values else ""
        return key, f"{found['value']} is not an allowed value{allowed}"
    if _REGEX.match(message):
        described = _description(field)
        return key, "has characters or a form that is not allowed" + (
            f" (expected: {described})" if described else ""
        )
    return key, _reason(message)


def _reason(message: str) -> str:
    """msgspec's constraint and type messages, which need no knowledge of the field."""
    if found := _LENGTH.match(message):
        if found["op"] == ">=" and found["bound"] == "1":
            return "must not be empty"
        unit = _UNITS.get(found["kind"], "items")
        return f"must have {_COMPARISONS[found['op']]} {found['bound']} {unit}"
    if found := _RANGE.match(message):
        return f"must be {_COMPARISONS[found['op']]} {found['bound']}"
    if found := _TYPE.match(message):
        expected = _KINDS.get(found["expected"], found["expected"])
        return f"must be {expected}, not {_KINDS.get(found['got'], found['got'])}"
    if message in {"Invalid UUID", "Invalid UUID string"}:
        return "must be a UUID such as 3f0c5a8e-9b1d-4c2e-8f00-6a7b8c9d0e1f"
    return message


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _field_type(
    request: Request[Any, Any, Any], source: object, key: str
) -> msgspec.inspect.Type | None:
    """The declared type of a body field (walked by its dotted path) or of a parameter."""
    parameters = request.route_handler.parsed_fn_signature.parameters
    root, parts = ("data", key.split(".")) if source == "body" else (key, [])
    declared = parameters.get(root)
    if declared is None:
        return None
    try:
        node: msgspec.inspect.Type = msgspec.inspect.type_info(declared.annotation)
    except TypeError:  # a framework type msgspec cannot describe: no hint to give
        return None
    for part in filter(None, parts):
        node = _unwrap(node)
        if not isinstance(node, msgspec.inspect.StructType):
            return None
        by_name = {f.encode_name: f.type for f in node.fields}
        if part not in by_name:
            return None
        node = by_name[part]
    return node


def _unwrap(node: msgspec.inspect.Type) -> msgspec.inspect.Type:
    while True:
        if isinstance(node, msgspec.inspect.Metadata):
            node = node.type
        elif isinstance(node, msgspec.inspect.UnionType):
            # ``X | None`` and ``X | UNSET``: the one real alternative says what is allowed.
            real = [t for t in node.types if not isinstance(t, msgspec.inspect.NoneType)]
            if len(real) != 1:
                return node
            node = real[0]
        else:
            return node


def _allowed_values(field: msgspec.inspect.Type | None) -> list[str]:
    node = None if field is None else _unwrap(field)
    if isinstance(node, msgspec.inspect.LiteralType):
        return [str(v) for v in node.values]
    if isinstance(node, msgspec.inspect.EnumType):
        return [str(member.value) for member in node.cls]
    return []


def _description(field: msgspec.inspect.Type | None) -> str | None:
    """The first sentence of the field type's documented constraint, e.g. "1–64 characters, …"."""
    while isinstance(field, msgspec.inspect.Metadata):
        text = (field.extra_json_schema or {}).get("description")
        if isinstance(text, str) and text:
            return text.split(". ", 1)[0].rstrip(".")
        field = field.type
    return None


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[wire.ErrorBody]:
    status = exc.status_code
    if status >= 500:
        return unexpected_error(request, exc)
    if status == 400:
        return broker_error(request, errors.InvalidJson(exc.detail))
    if status == 404:
        # Litestar answers 404 when a typed path segment ({id:uuid}) does not parse: that is a
        # bad parameter of a route that exists, not a missing route.
        if isinstance(exc.__cause__, ValueError) and (bad := _unparsable_segments(request)):
            return broker_error(request, errors.InvalidParameter(bad))
        return broker_error(request, errors.RouteNotFound(request.method, request.url.path))
    if status == 405:
        response = broker_error(request, errors.MethodNotAllowed(request.method, request.url.path))
        # RFC 9110: a 405 names the methods the resource does support.
        response.headers.update(exc.headers or {})
        return response
    return render(status, code=_CODES.get(status, "client_error"), message=str(exc.detail))


def _unparsable_segments(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The typed parameters that fail to parse in the first route shaped like this path."""
    segments = [part for part in request.url.path.split("/") if part]
    for route in request.app.routes:
        components = route.path_components
        if len(components) != len(segments):
            continue
        bad: dict[str, str] = {}
        for component, segment in zip(components, segments, strict=True):
            if isinstance(component, str):
                if component != segment:
                    break
            elif component.parser is not None and not _parses(component.parser, segment):
                kind = _KINDS.get(component.type.__name__.lower(), component.type.__name__)
                bad[component.name] = f"must be {kind}, not {segment!r}"
        else:
            if bad:
                return bad
    return {}


def _parses(parser: Callable[[str], Any], segment: str) -> bool:
    try:
        parser(segment)
    except ValueError:
        return False
    return True


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[wire.ErrorBody]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return broker_error(request, errors.InternalError())


HANDLERS = {
    errors.BrokerError: broker_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
