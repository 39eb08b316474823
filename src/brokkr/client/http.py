"""The request core shared by every resource: PAK header, timeouts, TLS, retries, decoding."""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

import brokkr
from brokkr.client import errors, tls

T = TypeVar("T")
P = TypeVar("P")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class Retry(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with full jitter.

    Idempotent calls are retried on connection errors and on 429/502/503/504; other calls only
    when the connection was refused (the request never reached the broker).
    """

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
        # A server's Retry-After is honoured, up to max_backoff: a client never stalls longer.
        return max(delay, min(retry_after or 0.0, self.max_backoff))


class Http:
    def __init__(
        self,
        base_url: str,
        pak: str | None,
        *,
        timeout: float,
        verify: tls.Verify,
        cert: tls.Cert,
        retry: Retry,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        headers = {"User-Agent": f"brokkr-client/{brokkr.__version__}"}
        if pak:
            headers["Authorization"] = f"Bearer {pak}"
        self.retry = retry
        # What a WebSocket stream (``streams``) connects with: same broker, PAK and TLS.
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self._verify, self._cert = verify, cert
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            # Built now (even for http:// URLs), so an unreadable CA bundle is reported when the
            # client is made rather than at first use; a transport replaces the network (tests).
            verify=self.ssl if transport is None else True,
            transport=transport,
        )

    @functools.cached_property
    def ssl(self) -> ssl.SSLContext:
        """The one TLS context of REST calls and WebSocket streams alike (~40 ms to build)."""
        return tls.context(self._verify, self._cert)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> httpx.Response:
        """Send one call, retrying what is safe to retry; raise the typed error otherwise."""
        body = msgspec.json.encode(json) if json is not None else content
        request_headers = dict(headers or {})
        if json is not None:
            request_headers.setdefault("Content-Type", "application/json")
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = await self.client.request(
                    method, path, content=body, params=query, headers=request_headers
                )
            except httpx.TimeoutException as exc:
                # A connect timeout means the request never reached the broker: safe to resend.
                connecting = isinstance(exc, httpx.ConnectTimeout)
                if not self._may_retry(method, attempt, refused=connecting):
                    raise errors.BrokkrTimeout(f"{method} {path}: timed out") from exc
            except httpx.TransportError as exc:
                _refuse_untrusted(method, path, exc)
                refused = isinstance(exc, httpx.ConnectError)
                if not self._may_retry(method, attempt, refused=refused):
                    raise errors.BrokkrConnectionError(
                        f"{method} {path}: cannot reach the broker: {exc}"
                    ) from exc
            else:
                if response.status_code in ok:
                    return response
                retryable = response.status_code in RETRY_STATUSES and method in IDEMPOTENT
                if not retryable or attempt + 1 >= self.retry.attempts:
                    raise errors.from_response(response)
                await asyncio.sleep(self.retry.delay(attempt, _retry_after(response)))
                attempt += 1
                continue
            await asyncio.sleep(self.retry.delay(attempt))
            attempt += 1

    def _may_retry(self, method: str, attempt: int, *, refused: bool) -> bool:
        return attempt + 1 < self.retry.attempts and (refused or method in IDEMPOTENT)

    async def call(
        self,
        method: str,
        path: str,
        result: type[T],
        **kwargs: Any,
    ) -> T:
        response = await self.send(method, path, **kwargs)
        return msgspec.json.decode(response.content, type=result)

    async def pages(
        self, path: str, result: type[P], *, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[P]:
        """Each page of a GET list (a JSON list, or a body holding one). The broker ends a page
        at ``limit`` items or at its byte budget, and names the next page's offset in
        X-Next-Offset; the last page has none."""
        query = dict(params or {})
        while True:
            response = await self.send("GET", path, params=query)
            yield msgspec.json.decode(response.content, type=result)
            offset = _next_offset(response, after=int(query.get("offset") or 0))
            if offset is None:
                return
            query["offset"] = offset

    async def collect(
        self, path: str, result: type[list[T]], *, params: Mapping[str, Any] | None = None
    ) -> list[T]:
        """Every item of a GET list, page after page."""
        return [item async for page in self.pages(path, result, params=params) for item in page]


def _refuse_untrusted(method: str, path: str, exc: httpx.TransportError) -> None:
    """Raise ``BrokkrCertificateError`` when ``exc`` is a failed certificate verification: an
    untrusted certificate stays untrusted, so retrying would only delay the answer."""
    problem = tls.certificate_problem(exc)
    if problem is not None:
        raise errors.BrokkrCertificateError(
            f"{method} {path}: the broker's TLS certificate was not accepted: "
            f"{tls.describe(problem)}"
        ) from exc


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _next_offset(response: httpx.Response, *, after: int) -> int | None:
    try:
        offset = int(response.headers["x-next-offset"])
    except (KeyError, ValueError):
        return None
    # Only a forward move: a confused server can never make a caller loop.
    return offset if offset > after else None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def segment(value: str) -> str:
    """A label or key as a path segment; "/" stays (the broker takes the rest of the path)."""
    return quote(value, safe="/:@")
