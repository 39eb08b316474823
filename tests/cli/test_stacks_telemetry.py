"""`brokkr stacks events`, `brokkr stacks logs [--follow]` and `brokkr agents connections`
against the session's real broker (rows written into its database as an agent's broker would).

Covers: events as a table (time, type, reason, object, message) and as JSON; a stack named by
name or id; logs oldest first as `namespace/pod[container] line` (`-q`: the lines alone);
`--since` as a duration (older lines left out) and a bad `--since` (usage error, exit 2); a
foreign stack (exit 1, the broker's error); `--follow` as a real process printing a line
written after it started, and a clean exit on Ctrl-C; `agents connections` for the admin
(table) and a generator (exit 1).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Broker, Cli, unique
from tests.cli.serving import BROKKR
from tests.client.telemetry_rows import insert_event, insert_lines

DEADLINE = 15.0


def test_events_show_as_a_table_and_as_json(cli: Cli, broker: Broker, stack: wire.Stack) -> None:
    asyncio.run(insert_event(broker.database_url, stack.id, reason="BackOff", message="crashed"))

    table = cli.ok("stacks", "events", stack.name)
    as_json = cli.ok("stacks", "events", str(stack.id), "-o", "json")

    header = table.stdout.splitlines()[1]
    assert all(word in header for word in ("time", "type", "reason", "object", "message"))
    assert "BackOff" in table.stdout and "Pod/web-1" in table.stdout
    assert "crashed" in table.stdout and "Warning" in table.stdout
    body = json.loads(as_json.stdout)
    assert [e["reason"] for e in body["events"]] == ["BackOff"]
    assert body["retention"]["retention_ceiling_seconds"] == 21600


def test_logs_print_oldest_first_and_since_leaves_older_out(
    cli: Cli, broker: Broker, stack: wire.Stack
) -> None:
    url = broker.database_url
    asyncio.run(insert_lines(url, stack.id, "an hour ago", age=timedelta(hours=1)))
    asyncio.run(insert_lines(url, stack.id, "first", "second"))

    every = cli.ok("stacks", "logs", stack.name)
    recent = cli.ok("stacks", "logs", stack.name, "--since", "10m")

    assert every.stdout.splitlines() == [
        "shop/web-1[app] an hour ago",
        "shop/web-1[app] first",
        "shop/web-1[app] second",
    ]
    assert recent.stdout.splitlines() == ["shop/web-1[app] first", "shop/web-1[app] second"]
    bare = cli.ok("stacks", "logs", stack.name, "--since", "10m", "-q")
    assert bare.stdout.splitlines() == ["first", "second"]


def test_a_bad_since_is_a_usage_error(cli: Cli, stack: wire.Stack) -> None:
    result = cli("stacks", "logs", stack.name, "--since", "last week")

    assert result.exit_code == 2
    assert "--since" in result.stderr


def test_a_foreign_stack_is_the_brokers_error(
    cli: Cli, admin: BrokkrClient, stack: wire.Stack
) -> None:
    other = admin.generators.create(name=unique("other")).pak

    result = cli.fails("stacks", "events", str(stack.id), pak=other)

    assert result.exit_code == 1
    assert "stack_not_found" in result.stderr


def test_follow_prints_new_lines_until_ctrl_c(
    broker: Broker, admin: BrokkrClient, generator_pak: str, stack: wire.Stack, tmp_path: Path
) -> None:
    asyncio.run(insert_lines(broker.database_url, stack.id, "history"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BROKKR")},
        "BROKKR_URL": broker.url,
        "BROKKR_PAK": generator_pak,
        "BROKKR_CONFIG_DIR": str(tmp_path),
    }
    out = tmp_path / "out.txt"
    before = admin.agents.connections().live_subscribers
    with out.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [BROKKR, "stacks", "logs", stack.name, "--follow"], env=env, stdout=sink
        )
    try:
        wait_for(lambda: admin.agents.connections().live_subscribers > before, "the stream")
        asyncio.run(insert_lines(broker.database_url, stack.id, "live one", pod="web-2"))
        wait_for(lambda: "live one" in out.read_text(), "the live line")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=DEADLINE) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert out.read_text().splitlines() == ["shop/web-1[app] history", "shop/web-2[app] live one"]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE} s"
        time.sleep(0.05)


def test_connections_for_admins(cli: Cli, generator_pak: str) -> None:
    shown = cli.ok("agents", "connections")
    refused = cli.fails("agents", "connections", pak=generator_pak)

    assert "agents connected" in shown.stdout and "live subscribers" in shown.stdout
    assert refused.exit_code == 1
