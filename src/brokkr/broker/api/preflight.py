"""D2 bodies for refused CORS pre-flights.

Litestar's CORS layer is the outermost part of the app and answers a refused pre-flight itself,
with a plain-text ``400 Disallowed CORS Origin, method, headers``. ``json_refusals`` wraps the
``send`` of an OPTIONS request (the observability layer does, just outside Litestar) and turns
that answer into the D2 JSON body, keeping the status and the other headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from brokkr.broker.api import errors as api_errors
from brokkr.broker.domain import errors

if TYPE_CHECKING:
    from brokkr.broker.api.observability import Message, Send

_PREFIX = "Disallowed CORS "
_REPLACED = {b"content-type", b"content-length"}


def json_refusals(send: Send) -> Send:
    held: list[Message] = []

    async def send_json(message: Message) -> None:
        if message["type"] == "http.response.start" and _is_plain_400(message):
            held.append(message)
            return
        if held and message["type"] == "http.response.body":
            await _send_refusal(send, held[0], bytes(message.get("body", b"")))
            return
        await send(message)

    return send_json


def _is_plain_400(start: Message) -> bool:
    content_type: bytes = dict(start.get("headers", [])).get(b"content-type", b"")
    return start["status"] == 400 and content_type.startswith(b"text/plain")


async def _send_refusal(send: Send, start: Message, text: bytes) -> None:
    reason = text.decode("utf-8", "replace")
    refused = [part.strip() for part in reason.removeprefix(_PREFIX).split(",") if part.strip()]
    body = msgspec.json.encode(api_errors.body_of(errors.CorsPreflightRefused(refused)))
    headers = [(name, value) for name, value in start.get("headers", []) if name not in _REPLACED]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
