"""WebSocket streams of the broker (the live stack stream): same base URL (ws/wss), PAK and TLS
options as the REST calls; a refused upgrade raises the typed error a REST call would."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from websockets import exceptions as ws_errors
from websockets.asyncio.client import ClientConnection, connect

from brokkr.client import errors, tls
from brokkr.client.http import Http
from brokkr.common import wire
from brokkr.common.wire import channel

LiveFrame = wire.AgentK8sEvent | wire.AgentPodLog | channel.LogGapBody
_BODIES: dict[str, type[LiveFrame]] = {
    channel.K8S_EVENT: wire.AgentK8sEvent,
    channel.POD_LOG_LINE: wire.AgentPodLog,
    channel.LOG_GAP: channel.LogGapBody,
}
# Frames are a line or an event: anything near this size is not one the broker sends.
MAX_FRAME_BYTES = 1024 * 1024
# Close codes the broker ends a live stream with (besides 1000/1001).
STACK_DELETED = 4404
ACCESS_REVOKED = 4403


def _ws_url(http: Http, path: str) -> str:
    scheme, rest = http.base_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{path}"


async def _open(http: Http, path: str) -> ClientConnection:
    headers = {k: v for k, v in http.headers.items() if k != "User-Agent"}
    try:
        return await connect(
            _ws_url(http, path),
            additional_headers=headers,
            user_agent_header=http.headers.get("User-Agent"),
            ssl=http.ssl if http.base_url.startswith("https://") else None,
            open_timeout=http.timeout,
            max_size=MAX_FRAME_BYTES,
        )
    except ws_errors.InvalidStatus as exc:
        answer = exc.response
        raise errors.from_answer(
            answer.status_code, bytes(answer.body or b""), reason=answer.reason_phrase
        ) from exc
    except TimeoutError as exc:
        raise errors.BrokkrTimeout(f"GET {path}: timed out") from exc
    except ssl.SSLCertVerificationError as exc:
        raise errors.BrokkrCertificateError(
            f"GET {path}: the broker's TLS certificate was not accepted: {tls.describe(exc)}"
        ) from exc
    except (OSError, ws_errors.InvalidHandshake, ws_errors.InvalidURI) as exc:
        raise errors.BrokkrConnectionError(f"GET {path}: cannot reach the broker: {exc}") from exc


def _ended(exc: ws_errors.ConnectionClosed) -> None:
    """Return when the broker ended the stream normally; raise what its close code means."""
    code = exc.rcvd.code if exc.rcvd is not None else None
    if code in (1000, 1001):
        return
    if code == STACK_DELETED:
        raise errors.NotFound(404, "stack_not_found", "the stack was deleted") from exc
    if code == ACCESS_REVOKED:
        raise errors.Unauthorized(401, "pak_revoked", "the PAK is no longer valid") from exc
    raise errors.BrokkrConnectionError(f"the live stream broke off: {exc}") from exc


async def frames(http: Http, path: str) -> AsyncIterator[LiveFrame]:
    """The decoded frames of the stream at ``path`` until the broker ends it; frames of
    unknown types are skipped (a newer broker may send more)."""
    connection = await _open(http, path)
    try:
        while True:
            try:
                message: Any = await connection.recv()
            except ws_errors.ConnectionClosed as exc:
                _ended(exc)
                return
            try:
                envelope = msgspec.json.decode(message, type=channel.Envelope)
                body_type = _BODIES.get(envelope.type)
                if body_type is not None:
                    yield msgspec.json.decode(envelope.body, type=body_type)
            except msgspec.MsgspecError:
                continue
    finally:
        await connection.close()
