"""Client errors: one hierarchy, translated once from HTTP responses and httpx failures.

BrokkrError
├── BrokkrConnectionError     the broker could not be reached (after retries)
│   ├── BrokkrTimeout
│   └── BrokkrCertificateError  its TLS certificate was not trusted (never retried)
└── BrokkrAPIError            the broker answered with an error (D2 body: code, message, details)
    ├── BadRequest (400)      ├── NotFound (404)      ├── ValidationFailed (422)
    ├── Unauthorized (401)    ├── Conflict (409)      └── ServerError (5xx)
    └── Forbidden (403)
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from brokkr.common import wire


class BrokkrError(Exception):
    """Anything the client raises."""


class BrokkrConnectionError(BrokkrError):
    pass


class BrokkrTimeout(BrokkrConnectionError):
    pass


class BrokkrCertificateError(BrokkrConnectionError):
    """The broker's TLS certificate failed verification: not signed by a trusted CA (give its
    CA bundle with ``verify=``), expired, or issued for another host name."""


class BrokkrAPIError(BrokkrError):
    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class BadRequest(BrokkrAPIError):
    pass


class Unauthorized(BrokkrAPIError):
    pass


class Forbidden(BrokkrAPIError):
    pass


class NotFound(BrokkrAPIError):
    pass


class Conflict(BrokkrAPIError):
    pass


class ValidationFailed(BrokkrAPIError):
    pass


class ServerError(BrokkrAPIError):
    pass


_BY_STATUS: dict[int, type[BrokkrAPIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}


def from_response(response: httpx.Response) -> BrokkrAPIError:
    """The typed error for a failed response; tolerates bodies that are not D2 JSON."""
    return from_answer(response.status_code, response.content, reason=response.reason_phrase)


def from_answer(status: int, content: bytes, *, reason: str = "") -> BrokkrAPIError:
    """The typed error for a failed answer's status and body (a REST response, or a refused
    WebSocket upgrade)."""
    try:
        body = msgspec.json.decode(content, type=wire.ErrorBody)
        code, message = body.code, body.message or body.error
        details = None if body.details is msgspec.UNSET else body.details
    except msgspec.MsgspecError:
        code = "http_error"
        message = content.decode("utf-8", "replace").strip()[:500] or reason
        details = None
    error_type = ServerError if status >= 500 else _BY_STATUS.get(status, BrokkrAPIError)
    return error_type(status, code, message, details)
