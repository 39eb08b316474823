"""Status bodies with the reasons, codes and message shapes a real kube-apiserver uses."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]

ACCEPTED_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
)


class ApiError(Exception):
    """An error answered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Obj | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # StatusReasonUnknown is "" and omitted, as Go's omitempty does
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str) -> Obj:
    details: Obj = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def namespace_not_found(name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"}
    )


def no_such_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(rt: ResourceType, name: str, *, deleting: bool = False) -> ApiError:
    """``deleting``: the name is held by an object still being deleted (e.g. Terminating)."""
    prefix = "object is being deleted: " if deleting else ""
    return ApiError(
        409,
        "AlreadyExists",
        f'{prefix}{rt.qualified} "{name}" already exists',
        _details(rt, name),
    )


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        _details(rt, name),
    )


def stale(rt: ResourceType, name: str) -> ApiError:
    return conflict(
        rt,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def invalid(
    kind: str, group: str, name: str, causes: list[tuple[str, str, str]], qualified: str = ""
) -> ApiError:
    """422 Invalid; ``causes`` are (reason, field, message) as in field.ErrorList."""
    qualified = qualified or (f"{kind}.{group}" if group else kind)
    texts = [f"{field}: {message}" for _, field, message in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: Obj = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": reason, "message": message, "field": field} for reason, field, message in causes
    ]
    if not name:
        del details["name"]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def invalid_object(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    return invalid(rt.kind, rt.group, name, causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def unsupported_media_type(content_type: str, accepted: tuple[str, ...]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
        {},
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden_terminating(rt: ResourceType, name: str, namespace: str) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'{rt.qualified} "{name}" is forbidden: unable to create new content in namespace '
        f"{namespace} because it is being terminated",
        _details(rt, name),
    )


def internal(message: str = "injected fault") -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after},
        {"Retry-After": str(retry_after)},
    )


def service_unavailable() -> ApiError:
    return ApiError(
        503, "ServiceUnavailable", "the server is currently unable to handle the request", {}
    )


def for_status(code: int, retry_after: int = 1) -> ApiError:
    """The error a fault injection answers with, by HTTP status."""
    if code == 429:
        return too_many_requests(retry_after)
    if code == 503:
        return service_unavailable()
    if code == 504:
        return ApiError(504, "Timeout", "the server was unable to return a response in time", {})
    if code == 409:
        return ApiError(409, "Conflict", "injected conflict", {})
    if code == 403:
        return ApiError(403, "Forbidden", "injected fault: forbidden", {})
    if code >= 500:
        return internal()
    return ApiError(code, "BadRequest", "injected fault")


def success(rt: ResourceType, name: str, uid: str) -> Obj:
    details = _details(rt, name)
    details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
