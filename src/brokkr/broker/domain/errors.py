"""Domain errors: each carries its HTTP status and stable code; the API renders them once (D2).

BrokerError
├── BadRequest (400)          ├── Forbidden (403)     ├── Conflict (409)
├── Unauthorized (401)        ├── NotFound (404)      ├── Unprocessable (422)
├── UnsupportedMediaType (415)                        └── Unavailable (503)
"""

from __future__ import annotations

from typing import Any, ClassVar


class BrokerError(Exception):
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details


class BadRequest(BrokerError):
    status = 400
    default_code = "bad_request"


class Unauthorized(BrokerError):
    status = 401
    default_code = "unauthorized"


class Forbidden(BrokerError):
    status = 403
    default_code = "forbidden"


class NotFound(BrokerError):
    status = 404
    default_code = "not_found"


class Conflict(BrokerError):
    status = 409
    default_code = "conflict"


class Unprocessable(BrokerError):
    status = 422
    default_code = "validation_failed"


class UnsupportedMediaType(BrokerError):
    status = 415
    default_code = "unsupported_media_type"


class Unavailable(BrokerError):
    status = 503
    default_code = "unavailable"
