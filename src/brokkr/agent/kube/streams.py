"""Long-lived GET streams (watches, followed pod logs), read line by line with bounded lines.

They run on a connection pool of their own: each holds a connection for minutes, and in the
shared pool of ``KubeClient`` they would starve the agent's short requests. The pool has no
connection limit; the callers bound how many streams they open (two watches and at most
``pod_logs.MAX_TAILS`` tails). Reads time out after ``idle_timeout`` silent seconds, so a
connection the network silently dropped is noticed and reopened.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx2
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SingleConfig

from brokkr.agent.kube import errors
from brokkr.agent.kube.client import TIMEOUT_SECONDS
from brokkr.agent.telemetry import LineSplitter


class Streams:
    def __init__(self, config: SingleConfig) -> None:
        params = client_adapter.ConnectionParams(httpx2.Timeout(TIMEOUT_SECONDS))
        self._http = httpx2.AsyncClient(
            **params.httpx_params(config),
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=20),
        )

    @asynccontextmanager
    async def lines(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        max_line_bytes: int,
        idle_timeout: float,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The lines of the answer to GET ``path`` as they arrive (each cut to
        ``max_line_bytes``; a last line without an end included); raises ``KubeError`` for an
        error answer or a failed read."""
        timeout = httpx2.Timeout(TIMEOUT_SECONDS, read=idle_timeout)
        with errors.translated():
            async with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    body = await response.aread()
                    raise errors.from_status(response.status_code, _status(body))
                yield _split(response, LineSplitter(max_line_bytes))

    async def aclose(self) -> None:
        await self._http.aclose()


async def _split(response: httpx2.Response, splitter: LineSplitter) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_bytes():
        for line in splitter.feed(chunk):
            yield line
    rest = splitter.rest()
    if rest is not None:
        yield rest


def _status(body: bytes) -> dict[str, object]:
    """The Status object of an error answer, or nothing when it is not one."""
    try:
        status = json.loads(body)
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}
