"""The HTTP client that POSTs webhook envelopes: one connection pool for every delivery of the
process, redirects never followed (a redirect could lead a signed body anywhere), a timeout
per request, and only the start of an answer's body read (a receiver's error page can be any
size). What an attempt did comes back as a ``webhook_delivery.Outcome``; nothing raises."""

from __future__ import annotations

import httpx

from brokkr.broker.domain.webhook_delivery import Outcome, http_error

# Enough of an error answer to say what went wrong.
_BODY_BYTES = 1024


class Sender:
    def __init__(self, *, max_connections: int = 1000) -> None:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, timeout: float
    ) -> Outcome:
        try:
            async with self._client.stream(
                "POST", url, content=body, headers=headers, timeout=timeout
            ) as response:
                if response.is_success:
                    return Outcome(success=True, status_code=response.status_code)
                start = await _start_of(response)
                error = http_error(response.status_code, response.reason_phrase, start)
                return Outcome(success=False, status_code=response.status_code, error=error)
        except httpx.TimeoutException:
            return Outcome(success=False, error=f"request timed out after {timeout:g}s")
        except httpx.ConnectError as exc:
            return Outcome(success=False, error=f"connection failed: {exc}")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return Outcome(success=False, error=f"request failed: {exc}")

    async def close(self) -> None:
        await self._client.aclose()


async def _start_of(response: httpx.Response) -> str:
    read = b""
    async for chunk in response.aiter_bytes():
        read += chunk
        if len(read) >= _BODY_BYTES:
            break
    return read[:_BODY_BYTES].decode(errors="replace")
