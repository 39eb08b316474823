"""docs/webhooks.md: its copy-paste receiver runs as written, and it documents every event type.

Covers: the ```python block starting ``# receiver.py``, read from the doc (so the two cannot
drift apart), runs as a subprocess on a free port with only ``BROKKR_WEBHOOK_SECRET``, ``HOST``
and ``PORT`` set; an envelope signed with ``brokkr.common.signing`` (the broker's definition)
is answered 2xx and printed; a wrong, missing or differently keyed signature and a tampered
body are answered 401 and not printed; the same event sent twice is printed once. Against a
real broker (SQLite): a subscription with a secret POSTs ``stack.created`` to that receiver,
which accepts the signature and prints the event. The doc names every type of the event
catalogue, each signed header, and uses ``hmac.compare_digest``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from brokkr.broker.domain import events, paks
from brokkr.client import AsyncBrokkrClient
from brokkr.common import signing, wire
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port, running_broker

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "webhooks.md"
MARKER = "# receiver.py"
SECRET = "a-receiver-secret-of-32-characters"


def receiver_source() -> str:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    [source] = [str(block) for block in blocks if block.startswith(MARKER)]
    return source


@dataclass
class Receiver:
    url: str
    output: Path

    def lines(self) -> list[str]:
        return self.output.read_text(encoding="utf-8").splitlines()


@contextmanager
def running_receiver(tmp_path: Path) -> Iterator[Receiver]:
    script = tmp_path / "receiver.py"
    script.write_text(receiver_source(), encoding="utf-8")
    port = free_port()
    output = tmp_path / "receiver.out"
    env = {"BROKKR_WEBHOOK_SECRET": SECRET, "HOST": HOST, "PORT": str(port)}
    with output.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own doc's script
            [sys.executable, str(script)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield Receiver(url=f"http://{HOST}:{port}/", output=output)
    finally:
        process.terminate()
        process.wait(timeout=10)


def envelope(event_type: str = "stack.created") -> bytes:
    return msgspec.json.encode(
        wire.WebhookEnvelope(
            id=uuid.uuid4(),
            event_type=event_type,
            timestamp=datetime.now(UTC),
            data={"stack_id": str(uuid.uuid4()), "name": "web"},
        )
    )


async def post(receiver: Receiver, body: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json", "X-Brokkr-Event": "stack.created"}
    if signature is not None:
        headers[signing.HEADER] = signature

    async def answered() -> int | None:
        try:
            async with httpx.AsyncClient() as client:
                response = await client.post(receiver.url, content=body, headers=headers)
        except httpx.ConnectError:
            return None  # still starting
        return response.status_code

    status: int = await eventually(answered, what="the receiver answering")
    return status


async def test_the_receiver_accepts_only_correctly_signed_events_once(tmp_path: Path) -> None:
    with running_receiver(tmp_path) as receiver:
        body = envelope()
        event_id = msgspec.json.decode(body)["id"]

        assert await post(receiver, body, signing.sign(SECRET, body)) // 100 == 2
        assert await post(receiver, body, "sha256=" + "0" * 64) == 401
        assert await post(receiver, body, None) == 401
        assert await post(receiver, body, signing.sign("another-secret-of-16+", body)) == 401
        tampered = body.replace(b'"web"', b'"evil"')
        assert await post(receiver, tampered, signing.sign(SECRET, body)) == 401
        # The same event again (a redelivery) is acknowledged and not handled twice.
        assert await post(receiver, body, signing.sign(SECRET, body)) // 100 == 2
        other = envelope("deployment.applied")
        assert await post(receiver, other, signing.sign(SECRET, other)) // 100 == 2

        lines = await eventually(lambda: len(receiver.lines()) >= 2 and receiver.lines())
    assert [line.split()[:2] for line in lines] == [
        ["stack.created", event_id],
        ["deployment.applied", msgspec.json.decode(other)["id"]],
    ]


async def test_the_receiver_takes_what_a_real_broker_sends(tmp_path: Path) -> None:
    admin_pak = paks.generate().plaintext
    extra = {"BROKKR__BROKER__ADMIN_PAK": admin_pak, "BROKKR__LOG__LEVEL": "warning"}
    with (
        running_broker(tmp_path / "data", tmp_path, extra_env=extra) as broker,
        running_receiver(tmp_path) as receiver,
    ):
        async with AsyncBrokkrClient(broker.url, admin_pak) as admin:
            await admin.webhooks.create(
                name="docs", url=receiver.url, event_types=["stack.*"], secret=SECRET
            )
            generator = (await admin.generators.create(name="ci")).generator
            stack = await admin.stacks.create(name="web", generator_id=generator.id)

            lines = await eventually(receiver.lines, what="the event printed")
    [event_type, _, data] = lines[0].split(" ", 2)
    assert event_type == "stack.created"
    assert msgspec.json.decode(data)["stack_id"] == str(stack.id)


def test_the_doc_names_every_event_type_and_header() -> None:
    text = DOC.read_text(encoding="utf-8")
    for event_type in (*events.CATALOGUE, events.TEST):
        assert f"| `{event_type}` |" in text or f"`{event_type}`" in text, event_type
    table_rows = re.findall(r"^\| `([a-z]+\.[a-z]+)` \|", text, flags=re.MULTILINE)
    assert set(events.CATALOGUE) <= set(table_rows)
    for header in ("X-Brokkr-Event", "X-Brokkr-Delivery-Id", signing.HEADER, "Authorization"):
        assert f"`{header}`" in text, header
    assert "hmac.compare_digest" in receiver_source()
