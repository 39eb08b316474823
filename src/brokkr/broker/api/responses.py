"""OpenAPI descriptions of the error responses a route can give (all are D2 bodies)."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from brokkr.common import wire

_TEXT = {
    400: "Invalid parameter or malformed JSON",
    401: "Missing, malformed or revoked PAK",
    403: "The caller's role or identity may not do this",
    404: "Not found",
    409: "Conflicts with an existing resource",
    422: "The request body fails validation; `details.fields` names the fields",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """401 and 403 apply to every /api/v1 route and are always included."""
    wanted = sorted({401, 403, *statuses})
    return {
        status: ResponseSpec(data_container=wire.ErrorBody, description=_TEXT[status])
        for status in wanted
    }
