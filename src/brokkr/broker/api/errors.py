"""The one place failures become D2 JSON: domain errors, Litestar's own 4xx, and the rest (500)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from brokkr.broker.domain import errors
from brokkr.common import wire

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
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
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[wire.ErrorBody]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    fields = {str(p.get("key")): str(p.get("message")) for p in problems if isinstance(p, dict)}
    sources = {p.get("source") for p in problems if isinstance(p, dict)}
    if sources and sources <= {"path", "query", "header"}:
        return render(
            400,
            code="invalid_parameter",
            message="invalid request parameter",
            details={"fields": fields},
        )
    return render(
        422,
        code="validation_failed",
        message="the request body is invalid",
        details={"fields": fields},
    )


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[wire.ErrorBody]:
    status = exc.status_code
    if status >= 500:
        return unexpected_error(request, exc)
    if status == 400:
        return render(
            400, code="invalid_json", message=f"the request body is not valid JSON: {exc.detail}"
        )
    if status == 404:
        return render(
            404, code="not_found", message=f"no route for {request.method} {request.url.path}"
        )
    if status == 405:
        return render(
            405,
            code="method_not_allowed",
            message=f"{request.method} is not allowed on {request.url.path}",
        )
    return render(status, code=_CODES.get(status, "client_error"), message=str(exc.detail))


# PostgreSQL's character_not_in_repertoire: a NUL character in a text value (SQLite stores it).
_NUL_IN_TEXT = "22021"


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[wire.ErrorBody]:
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == _NUL_IN_TEXT:
        return render(400, code="invalid_text", message="text may not contain NUL characters")
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(
        HTTP_500_INTERNAL_SERVER_ERROR, code="internal_error", message="internal server error"
    )


HANDLERS = {
    errors.BrokerError: broker_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
