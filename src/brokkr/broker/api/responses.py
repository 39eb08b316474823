"""OpenAPI descriptions of the error responses a route can give (all are D2 bodies)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from brokkr.broker.domain import paging
from brokkr.common import wire

T = TypeVar("T")

Offset = Annotated[
    int,
    QueryParameter(
        ge=0, le=paging.MAX_OFFSET, description="Where the page starts (X-Next-Offset)."
    ),
]
# Lists the reference serves whole: the default page is the largest one.
WholeLimit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=paging.MAX_OFFSET,  # beyond a 64-bit integer is a 400, as for the offset
        description=f"Page size (default and cap {paging.MAX_LIMIT}).",
    ),
]

# Lists stop at `limits.list_page_bytes` of JSON as well as at `limit` items; the body keeps the
# reference shape and these headers say where the rest starts.
PAGE_HEADERS = [
    ResponseHeader(
        name="X-Next-Offset",
        documentation_only=True,
        value="100",  # documents the header's type; never sent
        description=(
            "Present when more items follow: the `offset` of the next page. A page ends at "
            "`limit` items or at the broker's byte budget (`limits.list_page_bytes`), whichever "
            "comes first; one item is always served, however large."
        ),
    ),
    ResponseHeader(
        name="Link",
        documentation_only=True,
        value='</api/v1/stacks?offset=100>; rel="next"',  # documents the header's type
        description='Present when more items follow: `<next page URL>; rel="next"` (RFC 8288).',
    ),
]

_TEXT = {
    400: "Invalid parameter or malformed JSON",
    401: "Missing, malformed or revoked PAK",
    403: "The caller's role or identity may not do this",
    404: "Not found",
    409: "Conflicts with an existing resource",
    422: "The request body fails validation; `details.fields` names the fields",
    413: "The request body or the object in it is larger than the configured limit",
    503: "The broker cannot answer now; retry later",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """401 and 403 apply to every /api/v1 route and are always included."""
    wanted = sorted({401, 403, *statuses})
    return {
        status: ResponseSpec(data_container=wire.ErrorBody, description=_TEXT[status])
        for status in wanted
    }


def page(request: Request[Any, Any, Any], found: paging.Page[T]) -> Response[list[T]]:
    """A list answer with the reference body and, when more follow, where the next page starts."""
    return Response(found.items, headers=next_page(request, found.next_offset))


def next_page(request: Request[Any, Any, Any], next_offset: int | None) -> dict[str, str]:
    """The PAGE_HEADERS for a page after which ``next_offset`` starts (None: the last page)."""
    if next_offset is None:
        return {}
    query = [
        (k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "offset"
    ]
    query.append(("offset", str(next_offset)))
    return {
        "X-Next-Offset": str(next_offset),
        "Link": f'<{request.url.path}?{urlencode(query)}>; rel="next"',
    }
