"""``brokkr webhooks …`` against a real broker (subprocess, SQLite), run in-process.

Covers ``create`` with every option (the secret and auth header given directly or read from an
environment variable, filters, target labels, limits; -o json, -q) and what it refuses before
any request (no --event, a secret given twice, an unset variable, a bad --filter-label) or the
broker refuses (an unknown event type, naming the field); secrets never printed by any command;
``list``, ``get``, ``event-types`` (lines, -o json); ``update`` changing only what is given,
--disable, --clear-secret / --clear-filters / --clear-target-labels, a value and its --clear-*
refused together; ``delete`` (then 404); ``test`` against a local receiver (exit 0 and the
receiver got ``webhook.test``; a 500 exits 1 naming the status); ``deliveries`` (-q, --status,
--limit, -o json with the envelope).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from uuid import UUID

import pytest

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Cli, describe, unique
from tests.fakes.webhook_receiver import Reply, WebhookReceiver

SECRET = "cli-secret-0123456789abcdef"
AUTH = "Bearer cli-token-xyz"
URL = "https://hooks.example/cli"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """The receiver on an event loop of its own: the CLI blocks this test's thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = WebhookReceiver()
    asyncio.run_coroutine_threadsafe(running.start(), loop).result()
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def created_hook(
    cli: Cli, *args: str, env: dict[str, str | None] | None = None
) -> dict[str, object]:
    result = cli.ok("webhooks", "create", "--name", unique("hook"), *args, "-o", "json", env=env)
    assert SECRET not in result.output and AUTH not in result.output
    shown: dict[str, object] = json.loads(result.stdout)
    return shown


def stack_created(admin: BrokkrClient) -> wire.Stack:
    generator = admin.generators.create(name=unique("gen")).generator
    return admin.stacks.create(name=unique("stack"), generator_id=generator.id)


def test_create_list_get_and_event_types(cli: Cli, admin: BrokkrClient) -> None:
    agent_id = admin.agents.create(name=unique("agent"), cluster_name=unique("c")).agent.id
    created = created_hook(
        cli,
        "--url",
        URL,
        "--event",
        "stack.*",
        "--event",
        "deployment.failed",
        "--auth-header-from-env",
        "HOOK_AUTH",
        "--secret-from-env",
        "HOOK_SECRET",
        "--filter-agent",
        str(agent_id),
        "--filter-label",
        "team=web",
        "--target-label",
        "edge",
        "--max-retries",
        "2",
        "--timeout",
        "7",
        env={"HOOK_SECRET": SECRET, "HOOK_AUTH": AUTH},
    )

    assert created["event_types"] == ["stack.*", "deployment.failed"]
    assert (created["has_url"], created["has_auth_header"], created["has_secret"]) == (
        True,
        True,
        True,
    )
    assert created["filters"] == {"agent_id": str(agent_id), "labels": {"team": "web"}}
    assert (created["target_labels"], created["max_retries"], created["timeout_seconds"]) == (
        ["edge"],
        2,
        7,
    )
    webhook_id = str(created["id"])
    direct = created_hook(cli, "--url", URL, "--event", "*", "--secret", SECRET)
    assert direct["has_secret"] is True and "filters" not in direct

    shown = cli.ok("webhooks", "get", webhook_id, "-o", "json")
    assert json.loads(shown.stdout) == created
    listed = cli.ok("webhooks", "list", "-q").stdout.split()
    assert {webhook_id, str(direct["id"])} <= set(listed)
    table = cli.ok("webhooks", "list")
    assert webhook_id in table.stdout and "event_types" in table.stdout
    for result in (shown, table):
        assert (
            SECRET not in result.output and AUTH not in result.output and URL not in result.output
        )

    lines = cli.ok("webhooks", "event-types").stdout.splitlines()
    assert lines[:2] == ["agent.registered", "agent.deregistered"] and "workorder.failed" in lines
    as_json = json.loads(cli.ok("webhooks", "event-types", "-o", "json").stdout)
    assert as_json == lines == admin.webhooks.event_types()


def test_create_refuses_bad_input(cli: Cli, admin: BrokkrClient) -> None:
    before = len(admin.webhooks.list())
    base = ("webhooks", "create", "--name", unique("hook"), "--url", URL)

    no_event = cli.fails(*base)
    twice = cli.fails(*base, "--event", "*", "--secret", SECRET, "--secret-from-env", "HOOK")
    unset = cli.fails(*base, "--event", "*", "--secret-from-env", "HOOK", env={"HOOK": None})
    bad_label = cli.fails(*base, "--event", "*", "--filter-label", "novalue")
    unknown = cli.fails(*base, "--event", "stack.exploded")

    for usage in (no_event, twice, unset, bad_label):
        assert usage.exit_code == 2, describe(usage)
    assert "--event" in no_event.stderr
    assert "not both" in twice.stderr and SECRET not in twice.output
    assert "HOOK is not set" in unset.stderr
    assert "key=value" in bad_label.stderr
    assert unknown.exit_code == 1 and "(422 validation_failed)" in unknown.stderr
    assert "  event_types: unknown event type" in unknown.stderr
    assert len(admin.webhooks.list()) == before


def test_update_changes_only_what_is_given(cli: Cli, admin: BrokkrClient) -> None:
    created = created_hook(
        cli,
        "--url",
        URL,
        "--event",
        "stack.*",
        "--secret",
        SECRET,
        "--auth-header",
        AUTH,
        "--filter-stack",
        str(stack_created(admin).id),
        "--target-label",
        "edge",
    )
    webhook_id = str(created["id"])

    disabled = json.loads(
        cli.ok("webhooks", "update", webhook_id, "--disable", "--event", "*", "-o", "json").stdout
    )
    assert (disabled["enabled"], disabled["event_types"]) == (False, ["*"])
    assert {
        k: v for k, v in disabled.items() if k not in ("enabled", "event_types", "updated_at")
    } == {k: v for k, v in created.items() if k not in ("enabled", "event_types", "updated_at")}

    cleared = cli.ok(
        "webhooks",
        "update",
        webhook_id,
        "--clear-secret",
        "--clear-filters",
        "--clear-target-labels",
        "--enable",
        "-q",
    )
    assert cleared.stdout.split() == [webhook_id]
    after = admin.webhooks.get(UUID(webhook_id))
    assert (after.has_secret, after.has_auth_header, after.enabled) == (False, True, True)
    assert after.target_labels is None and not after.filters

    both = cli.fails("webhooks", "update", webhook_id, "--secret", SECRET, "--clear-secret")
    assert both.exit_code == 2 and "--clear-secret" in both.stderr
    assert admin.webhooks.get(UUID(webhook_id)).has_secret is False


def test_delete(cli: Cli) -> None:
    webhook_id = str(created_hook(cli, "--url", URL, "--event", "*")["id"])

    deleted = json.loads(cli.ok("webhooks", "delete", webhook_id, "-o", "json").stdout)

    assert deleted == {"kind": "webhook", "id": webhook_id, "deleted": True}
    missing = cli.fails("webhooks", "get", webhook_id)
    assert missing.exit_code == 1 and "404 webhook_not_found" in missing.stderr


def test_test_posts_to_the_receiver(cli: Cli, receiver: WebhookReceiver) -> None:
    webhook_id = str(created_hook(cli, "--url", receiver.url, "--event", "*")["id"])

    answered = cli.ok("webhooks", "test", webhook_id)

    assert "Test delivery successful" in answered.stdout
    [request] = receiver.requests
    assert request.envelope()["event_type"] == "webhook.test"
    assert cli.ok("webhooks", "test", webhook_id, "-q").stdout.split() == [webhook_id]
    receiver.answer = lambda _: Reply(status=500)
    refused = cli.fails("webhooks", "test", webhook_id)
    assert refused.exit_code == 1 and "webhook_test_failed" in refused.stderr
    assert "status_code: 500" in refused.stderr


def test_deliveries(cli: Cli, admin: BrokkrClient) -> None:
    # Target labels no agent has: the deliveries stay pending, for the listing.
    webhook_id = str(
        created_hook(cli, "--url", URL, "--event", "stack.created", "--target-label", unique("l"))[
            "id"
        ]
    )
    stacks = [stack_created(admin) for _ in range(2)]

    ids = cli.ok("webhooks", "deliveries", webhook_id, "-q").stdout.split()
    newest = cli.ok("webhooks", "deliveries", webhook_id, "--limit", "1", "-q").stdout.split()
    none = cli.ok("webhooks", "deliveries", webhook_id, "--status", "success", "-q").stdout
    shown = json.loads(cli.ok("webhooks", "deliveries", webhook_id, "-o", "json").stdout)

    assert len(ids) == 2 and newest == ids[:1] and none == ""
    assert [json.loads(d["payload"])["data"]["stack_id"] for d in shown] == [
        str(stack.id) for stack in reversed(stacks)
    ]
    assert {d["status"] for d in shown} == {"pending"}
    assert "pending" in cli.ok("webhooks", "deliveries", webhook_id).stdout
