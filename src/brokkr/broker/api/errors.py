"""The one place failures become D2 JSON: domain errors, Litestar's own 4xx, and the rest (500)."""

from __future__ import annotations

import logging
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


def render(
    status: int, *, code: str, message: str, details: dict[str, Any] | None = None
) -> Response[wire.ErrorBody]:
    body = wire.ErrorBody(
        error=message,
        code=code,
        message=message,
        details=msgspec.UNSET if details is None else details,
    )
    headers = {"WWW-Authenticate": 'Bearer realm="brokkr"'} if status == 401 else None
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def broker_error(_: Request[Any, Any, Any], exc: errors.BrokerError) -> Response[wire.ErrorBody]:
    return render(exc.status, code=exc.code, message=exc.message, details=exc.details)


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[wire.ErrorBody]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    fields = {str(p.get("key")): str(p.get("message")) for p in problems if isinstance(p, dict)}
    sources = {p.get("source") for p in problems if isinstance(p, dict)}
    if sources and sources <= {"path", "query", "header"}:
        return broker_error(request, errors.InvalidParameter(fields))
    return broker_error(request, errors.ValidationFailed(fields))


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[wire.ErrorBody]:
    status = exc.status_code
    if status >= 500:
        return unexpected_error(request, exc)
    if status == 400:
        return broker_error(request, errors.InvalidJson(exc.detail))
    if status == 404:
        return broker_error(request, errors.RouteNotFound(request.method, request.url.path))
    if status == 405:
        response = broker_error(request, errors.MethodNotAllowed(request.method, request.url.path))
        # RFC 9110: a 405 names the methods the resource does support.
        response.headers.update(exc.headers or {})
        return response
    return render(status, code=_CODES.get(status, "client_error"), message=str(exc.detail))


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[wire.ErrorBody]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return broker_error(request, errors.InternalError())


HANDLERS = {
    errors.BrokerError: broker_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
