"""Which events reach a subscription (patterns, filters), what a valid subscription is, the
encryption of its secrets (D10) and the signature of its deliveries (D18). Pure: no I/O."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from brokkr.broker.domain import errors, events, secrets
from brokkr.broker.domain import webhooks as rules
from brokkr.common import signing, wire

AGENT = uuid.uuid4()
STACK = uuid.uuid4()


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "agent.registered", True),
        ("stack.*", "stack.created", True),
        ("stack.*", "stacks.created", False),
        ("stack.*", "deployment.created", False),
        ("deployment.applied", "deployment.applied", True),
        ("deployment.applied", "deployment.failed", False),
        ("template.*", "template.deleted", True),
    ],
)
def test_patterns(pattern: str, event_type: str, expected: bool) -> None:
    assert rules.pattern_matches(pattern, event_type) is expected


def test_any_pattern_is_enough() -> None:
    assert rules.wants(["agent.registered", "stack.*"], "stack.deleted")
    assert not rules.wants(["agent.registered", "stack.*"], "workorder.created")


def test_the_catalogue_starts_with_the_reference_twelve_in_order() -> None:
    assert events.CATALOGUE[:12] == (
        "agent.registered",
        "agent.deregistered",
        "stack.created",
        "stack.deleted",
        "deployment.created",
        "deployment.applied",
        "deployment.failed",
        "deployment.deleted",
        "workorder.created",
        "workorder.claimed",
        "workorder.completed",
        "workorder.failed",
    )
    assert events.PREFIXES == ("agent", "stack", "deployment", "workorder", "template")


def data(**values: Any) -> dict[str, Any]:
    return values


@pytest.mark.parametrize(
    ("filters", "event", "expected"),
    [
        (None, data(), True),
        (wire.WebhookFilters(agent_id=AGENT), data(agent_id=str(AGENT)), True),
        (wire.WebhookFilters(agent_id=AGENT), data(agent_id=AGENT), True),
        (wire.WebhookFilters(agent_id=AGENT), data(agent_id=str(uuid.uuid4())), False),
        # An event without the key the filter needs does not pass.
        (wire.WebhookFilters(agent_id=AGENT), data(stack_id=str(STACK)), False),
        (wire.WebhookFilters(stack_id=STACK), data(stack_id=str(STACK)), True),
        (
            wire.WebhookFilters(agent_id=AGENT, stack_id=STACK),
            data(agent_id=str(AGENT), stack_id=str(uuid.uuid4())),
            False,
        ),
    ],
)
def test_id_filters(
    filters: wire.WebhookFilters | None, event: dict[str, Any], expected: bool
) -> None:
    assert rules.passes(filters, event) is expected


def test_label_filters_need_every_pair_on_the_agent_or_on_the_stack() -> None:
    filters = wire.WebhookFilters(labels={"env": "prod", "team": "web"})
    assert rules.needs_annotations(filters)
    assert not rules.needs_annotations(wire.WebhookFilters(agent_id=AGENT))
    agent = {"env": "prod", "team": "web", "extra": "x"}
    stack = {"env": "prod"}
    assert rules.passes(filters, data(agent_id=AGENT), [agent])
    assert rules.passes(filters, data(agent_id=AGENT, stack_id=STACK), [stack, agent])
    # The pairs may not be split between agent and stack.
    assert not rules.passes(filters, data(), [{"env": "prod"}, {"team": "web"}])
    assert not rules.passes(filters, data(stack_id=STACK), [stack])
    # An event naming neither agent nor stack has no annotations: it never passes.
    assert not rules.passes(filters, data(work_order_id="x"), [])


def create(**fields: Any) -> wire.CreateWebhookRequest:
    body = {"name": "chat", "url": "https://hooks.example/x", "event_types": ["*"], **fields}
    return msgspec.convert(body, wire.CreateWebhookRequest)


def problems(request: wire.CreateWebhookRequest, networks: str = "") -> dict[str, str]:
    denied = rules.parse_networks(networks.split()) if networks else []
    with pytest.raises(errors.ValidationFailed) as raised:
        rules.validate_create(request, denied)
    assert raised.value.details is not None
    fields: dict[str, str] = raised.value.details["fields"]
    return fields


def test_defaults_and_normalisation() -> None:
    new = rules.validate_create(
        create(target_labels=[], filters={}, event_types=["*", "*"]), networks=[]
    )
    assert (new.max_retries, new.timeout_seconds) == (5, 30)
    assert new.target_labels is None  # empty: the broker delivers, never "every agent too"
    assert new.filters is None
    assert new.event_types == ["*"]
    assert new.auth_header is None and new.secret is None


def test_every_problem_is_named_at_once() -> None:
    found = problems(
        create(
            name=" ",
            url="ftp://x",
            event_types=["stack.*", "health.*", "agent.offline"],
            auth_header="Bearer x\r\nX-Injected: 1",
            secret="short",
            filters={"labels": {"env": "has space"}, "agent_id": str(uuid.UUID(int=0))},
            target_labels=["ok", "not ok"],
            max_retries=21,
            timeout_seconds=0,
        )
    )
    assert set(found) == {
        "name",
        "url",
        "event_types",
        "auth_header",
        "secret",
        "filters.labels",
        "filters.agent_id",
        "target_labels",
        "max_retries",
        "timeout_seconds",
    }
    assert "'health.*'" in found["event_types"] and "'agent.offline'" in found["event_types"]
    assert "stack.*" not in found["event_types"].split(":")[1].split(";")[0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("hooks.example/x", "http"),
        ("javascript:alert(1)", "http"),
        ("http://", "host"),
        ("https://x/" + "a" * 2048, "2048"),
        ("http://exa mple/", "whitespace"),
        ("http://host:port/", "valid"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    assert reason in problems(create(url=url))["url"]


def test_loopback_and_private_addresses_are_allowed_unless_denied() -> None:
    for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://[::1]/x"):
        rules.validate_create(create(url=url), networks=[])
    assert "denied" in problems(create(url="http://10.1.2.3/x"), "10.0.0.0/8")["url"]
    assert "denied" in problems(create(url="http://[::1]/x"), "::1/128")["url"]
    # A host name is checked when delivering (where it resolves then), not here.
    rules.validate_create(create(url="http://localhost/x"), rules.parse_networks(["127.0.0.0/8"]))


def test_bounds() -> None:
    assert "1 to 50" in problems(create(event_types=[]))["event_types"]
    assert "1 to 50" in problems(create(event_types=["*"] * 51))["event_types"]
    labels = [f"l{i}" for i in range(21)]
    assert "20" in problems(create(target_labels=labels))["target_labels"]
    pairs = {f"k{i}": "v" for i in range(21)}
    assert "20" in problems(create(filters={"labels": pairs}))["filters.labels"]
    assert "secret" in problems(create(secret="x" * 513))
    assert "auth_header" in problems(create(auth_header="x" * 4097))
    edge = create(max_retries=0, timeout_seconds=60, secret="x" * 16, name="n" * 255)
    assert rules.validate_create(edge, networks=[]).max_retries == 0


def test_an_update_checks_only_what_it_sends() -> None:
    def update(**fields: Any) -> dict[str, Any]:
        request = msgspec.convert(fields, wire.UpdateWebhookRequest)
        return rules.validate_update(request, networks=[])

    assert update() == {}
    assert update(enabled=False, auth_header=None, secret=None, filters=None) == {
        "enabled": False,
        "auth_header": None,
        "secret": None,
        "filters": None,
    }
    with pytest.raises(errors.ValidationFailed) as raised:
        update(url="ftp://x", event_types=[], max_retries=-1)
    assert raised.value.details == {
        "fields": {
            "url": "must start with http:// or https://",
            "event_types": "must hold 1 to 50 patterns",
            "max_retries": "must be between 0 and 20",
        }
    }


def test_encryption_round_trip_and_format() -> None:
    cipher = secrets.Cipher(secrets.generate_key())
    blob = cipher.encrypt("https://hooks.example/x?token=abc")
    assert blob[0] == 0x01 and len(blob) == 1 + 12 + len("https://hooks.example/x?token=abc") + 16
    assert b"hooks.example" not in blob
    assert cipher.decrypt(blob) == "https://hooks.example/x?token=abc"
    assert cipher.encrypt("same") != cipher.encrypt("same")  # a fresh nonce each time


def test_another_key_or_damage_is_refused() -> None:
    blob = secrets.Cipher(secrets.generate_key()).encrypt("https://x")
    other = secrets.Cipher(secrets.generate_key())
    with pytest.raises(secrets.SecretUnreadable):
        other.decrypt(blob)
    with pytest.raises(secrets.SecretUnreadable):
        other.decrypt(b"\x01short")


def test_the_reference_legacy_format_is_read() -> None:
    key = secrets.generate_key()
    nonce = os.urandom(16)
    mask = hashlib.sha256(key + nonce).digest()
    plaintext = b"https://legacy.example/hook-with-a-long-path-over-32-bytes"
    body = nonce + bytes(b ^ mask[i % 32] for i, b in enumerate(plaintext))
    cipher = secrets.Cipher(key)
    assert cipher.decrypt(b"\x00" + body) == plaintext.decode()
    if body[0] not in (0, 1):
        assert cipher.decrypt(body) == plaintext.decode()


def test_keys() -> None:
    key = secrets.parse_key("AB" * 32 + "\n")
    assert key == bytes([0xAB]) * 32
    assert secrets.fingerprint(key) == hashlib.sha256(key).digest()[:8].hex()
    for bad in ("", "ab" * 31, "zz" * 32, "ab" * 33):
        with pytest.raises(secrets.BadKey):
            secrets.parse_key(bad)
    holder = secrets.Secrets()
    with pytest.raises(RuntimeError):
        holder.encrypt("x")


def test_signature() -> None:
    body = b'{"id":"1"}'
    header = signing.sign("s" * 16, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signing.verify("s" * 16, body, header)
    assert not signing.verify("s" * 16, body + b" ", header)
    assert not signing.verify("t" * 16, body, header)
    assert not signing.verify("s" * 16, body, None)


def test_the_envelope_is_compact_json_with_utc_times() -> None:
    event = events.Event(event_type="stack.created", data={"stack_id": STACK, "n": 1})
    at = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
    encoded = events.envelope(event, event_id=AGENT, now=at)
    assert (
        encoded
        == (
            f'{{"id":"{AGENT}","event_type":"stack.created","timestamp":"2025-01-02T10:00:00Z",'
            f'"data":{{"stack_id":"{STACK}","n":1}}}}'
        ).encode()
    )
