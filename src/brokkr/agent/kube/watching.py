"""List, then watch from the list's resourceVersion, resuming after each watch from the last
version seen; a watch the server no longer has history for (410 Gone) lists again. Failures are
logged and retried after ``retry_delay``; nothing is raised but cancellation."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Protocol

from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.kube.streams import Streams

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LIST_PAGE = 500
# The server ends a watch after this long; it is then resumed (a silent connection is dropped
# this much later).
WATCH_SECONDS = 290
# Bound on one watch event's JSON: a larger one is skipped rather than buffered.
MAX_EVENT_BYTES = 4 * 1024 * 1024
RETRY_SECONDS = 5.0


class WatchHandler(Protocol):
    async def listed(self, items: list[Obj], *, first: bool) -> None:
        """All objects now (``first``: the first listing since the start, not a relist)."""
        ...

    async def changed(self, kind: str, obj: Obj) -> None:
        """``kind``: ADDED, MODIFIED or DELETED."""
        ...


class _Expired(Exception):
    """The watch's resourceVersion is too old: list again."""


async def list_and_watch(
    client: KubeClient,
    streams: Streams,
    path: str,
    handler: WatchHandler,
    *,
    retry_delay: float = RETRY_SECONDS,
) -> None:
    """Runs until cancelled."""
    version: str | None = None
    first = True
    while True:
        try:
            if version is None:
                items, version = await _list(client, path)
                await handler.listed(items, first=first)
                first = False
            started = time.monotonic()
            version, delivered = await _watch(streams, path, version, handler)
            if not delivered and time.monotonic() - started < 1.0:
                # A server ending watches at once must not make this a busy loop.
                await asyncio.sleep(retry_delay)
        except _Expired:
            version = None
        except Exception as exc:  # noqa: BLE001 - a watch never stops: log, wait, retry
            log.warning("watching %s failed, retrying in %g s: %s", path, retry_delay, exc)
            await asyncio.sleep(retry_delay)


async def _list(client: KubeClient, path: str) -> tuple[list[Obj], str]:
    items: list[Obj] = []
    params = {"limit": str(LIST_PAGE)}
    while True:
        page = await client.get_json(path, params)
        items += [item for item in page.get("items") or [] if isinstance(item, dict)]
        meta = page.get("metadata") or {}
        token = meta.get("continue")
        if not token:
            return items, str(meta.get("resourceVersion") or "")
        params = {"limit": str(LIST_PAGE), "continue": str(token)}


async def _watch(
    streams: Streams, path: str, version: str, handler: WatchHandler
) -> tuple[str, bool]:
    """The last version seen when the server ended the watch, and whether it delivered any."""
    params = {
        "watch": "true",
        "resourceVersion": version,
        "timeoutSeconds": str(WATCH_SECONDS),
        "allowWatchBookmarks": "true",
    }
    delivered = False
    async with streams.lines(
        path, params, max_line_bytes=MAX_EVENT_BYTES, idle_timeout=WATCH_SECONDS + 30
    ) as lines:
        async for line in lines:
            event = _decode(line)
            if event is None:
                log.warning("skipping an unreadable watch event of %s (%d bytes)", path, len(line))
                continue
            kind, obj = event
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Expired
                raise KubeError(f"watch of {path} failed: {obj.get('message') or obj}")
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind != "BOOKMARK":
                delivered = True
                await handler.changed(kind, obj)
    return version, delivered


def _decode(line: bytes) -> tuple[str, Obj] | None:
    """A watch event's type and object, or None for anything else (a cut line, say)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    kind, obj = event.get("type"), event.get("object")
    if not isinstance(kind, str) or not isinstance(obj, dict):
        return None
    return kind, obj
