"""``brokkr work-orders …`` against a real broker (subprocess, SQLite), run in-process.

Covers ``create`` (-f file or stdin, --agent/--label/--annotation targeting, the work type
inferred from the YAML or given by --type, -o json, -q, a bad --annotation and no targeting
refused), ``list`` (--status, --type), ``get``, ``cancel`` (then 404), ``log`` (--success and
--failed, one entry by id) and ``create --wait`` while a thread plays the agent with the client:
success prints who claimed it and the result and exits 0, a permanent failure exits 1 with the
reason, a scheduled retry is shown and an unfinished order exits 3 at --timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Cli, describe, unique

JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n"
BUILD = "apiVersion: shipwright.io/v1beta1\nkind: Build\nmetadata:\n  name: web\n"
FAST = ("--interval", "0.1")


def order_file(tmp_path: Path, content: str = JOB) -> str:
    path = tmp_path / f"{unique('order')}.yaml"
    path.write_text(content, encoding="utf-8")
    return str(path)


def labelled_agent(admin: BrokkrClient, label: str) -> wire.CreateAgentResponse:
    created = admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    admin.agents.add_label(created.agent.id, label)
    return created


def test_create_list_get_and_cancel(cli: Cli, admin: BrokkrClient, tmp_path: Path) -> None:
    label = unique("env")
    agent = labelled_agent(admin, label).agent

    created = json.loads(
        cli.ok(
            "work-orders",
            "create",
            "-f",
            order_file(tmp_path),
            "--label",
            label,
            "--agent",
            str(agent.id),
            "--annotation",
            "region=eu",
            "--max-retries",
            "1",
            "-o",
            "json",
        ).stdout
    )
    build_id = UUID(
        cli.ok(
            "work-orders", "create", "-f", "-", "--label", label, "-q", input=BUILD
        ).stdout.strip()
    )
    typed = cli.ok(
        "work-orders",
        "create",
        "-f",
        order_file(tmp_path, BUILD),
        "--type",
        "custom",
        "--label",
        label,
        "-q",
    ).stdout.strip()

    order_id = UUID(created["id"])
    assert (created["work_type"], created["status"], created["yaml_content"]) == (
        "custom",
        "PENDING",
        JOB,
    )
    assert created["max_retries"] == 1
    assert admin.work_orders.get(build_id).work_type == "build"
    assert admin.work_orders.get(UUID(typed)).work_type == "custom"
    pending = {o.id for o in admin.work_orders.list_pending(agent.id)}
    assert pending == {order_id, build_id, UUID(typed)}
    listed = cli.ok("work-orders", "list", "--status", "PENDING", "--type", "build", "-q")
    assert str(build_id) in listed.stdout.split() and str(order_id) not in listed.stdout
    table = cli.ok("work-orders", "list").stdout
    assert "work_type" in table and str(order_id) in table
    shown = cli.ok("work-orders", "get", str(order_id), "-o", "json").stdout
    assert json.loads(shown) == created

    cancelled = json.loads(cli.ok("work-orders", "cancel", str(order_id), "-o", "json").stdout)

    assert cancelled == {"kind": "work_order", "id": str(order_id), "deleted": True}
    missing = cli.fails("work-orders", "get", str(order_id))
    assert missing.exit_code == 1 and "404 work_order_not_found" in missing.stderr


def test_create_refuses_bad_targeting(cli: Cli, admin: BrokkrClient, tmp_path: Path) -> None:
    path = order_file(tmp_path)
    before = len(admin.work_orders.list())

    malformed = cli.fails("work-orders", "create", "-f", path, "--annotation", "novalue")
    untargeted = cli.fails("work-orders", "create", "-f", path)

    assert malformed.exit_code == 2 and "key=value" in malformed.stderr
    assert untargeted.exit_code == 1 and "no_targeting_specified" in untargeted.stderr
    assert len(admin.work_orders.list()) == before


def test_log_filters_by_outcome_and_shows_one_entry(
    cli: Cli, admin: BrokkrClient, tmp_path: Path
) -> None:
    label, work_type = unique("env"), unique("type")
    agent = labelled_agent(admin, label).agent
    ok, bad = (
        admin.work_orders.create(work_type=work_type, yaml_content=JOB, labels=[label])
        for _ in range(2)
    )
    for order, success in ((ok, True), (bad, False)):
        admin.work_orders.claim(order.id, agent.id)
        admin.work_orders.complete(order.id, success=success, message="m", retryable=False)

    succeeded = cli.ok("work-orders", "log", "--type", work_type, "--success", "-q")
    failed = cli.ok("work-orders", "log", "--type", work_type, "--failed", "-q")
    both = json.loads(cli.ok("work-orders", "log", "--type", work_type, "-o", "json").stdout)
    one = json.loads(cli.ok("work-orders", "log", str(bad.id), "-o", "json").stdout)

    assert succeeded.stdout.split() == [str(ok.id)]
    assert failed.stdout.split() == [str(bad.id)]
    assert {entry["id"] for entry in both} == {str(ok.id), str(bad.id)}
    assert (one["id"], one["success"], one["claimed_by"]) == (str(bad.id), False, str(agent.id))


@contextmanager
def playing_agent(
    cli: Cli, created: wire.CreateAgentResponse, *, success: bool, message: str, retryable: bool
) -> Iterator[list[BaseException]]:
    """A thread that, as the agent, claims the first order it is offered and completes it."""
    problems: list[BaseException] = []

    def run() -> None:
        try:
            with BrokkrClient(cli.broker.url, created.initial_pak) as agent:
                deadline = time.monotonic() + 30
                while not (pending := agent.work_orders.list_pending(created.agent.id)):
                    assert time.monotonic() < deadline, "no order was offered"
                    time.sleep(0.05)
                agent.work_orders.claim(pending[0].id, created.agent.id)
                # Let `--wait` see the claim before the result.
                time.sleep(0.5)
                agent.work_orders.complete(
                    pending[0].id, success=success, message=message, retryable=retryable
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            problems.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield problems
    finally:
        thread.join(timeout=60)


def test_wait_shows_the_claim_and_the_result(cli: Cli, admin: BrokkrClient, tmp_path: Path) -> None:
    label = unique("env")
    created = labelled_agent(admin, label)
    with playing_agent(
        cli, created, success=True, message="sha256:c0ffee", retryable=False
    ) as problems:
        result = cli(
            "work-orders", "create", "-f", order_file(tmp_path), "--label", label, "--wait", *FAST
        )
    assert not problems, problems
    assert result.exit_code == 0, describe(result)
    assert f"claimed by agent {created.agent.name} ({created.agent.id})" in result.stderr
    assert "sha256:c0ffee" in result.stderr and "succeeded" in result.stderr


def test_wait_exits_1_with_the_reason_of_a_failure(
    cli: Cli, admin: BrokkrClient, tmp_path: Path
) -> None:
    label = unique("env")
    created = labelled_agent(admin, label)
    with playing_agent(
        cli, created, success=False, message="Job failed: BackoffLimitExceeded", retryable=False
    ) as problems:
        result = cli(
            "work-orders", "create", "-f", order_file(tmp_path), "--label", label, "--wait", *FAST
        )
    assert not problems, problems
    assert result.exit_code == 1, describe(result)
    assert "BackoffLimitExceeded" in result.stderr


def test_wait_shows_a_scheduled_retry_and_times_out_with_3(
    cli: Cli, admin: BrokkrClient, tmp_path: Path
) -> None:
    label = unique("env")
    created = labelled_agent(admin, label)
    with playing_agent(
        cli, created, success=False, message="apiserver 503", retryable=True
    ) as problems:
        result = cli(
            "work-orders",
            "create",
            "-f",
            order_file(tmp_path),
            "--label",
            label,
            "--backoff-seconds",
            "600",
            "--max-retries",
            "2",
            "--wait",
            "--timeout",
            "3",
            *FAST,
        )
    assert not problems, problems
    assert result.exit_code == 3, describe(result)
    assert "retry 1 of 2 scheduled" in result.stderr and "apiserver 503" in result.stderr
    assert "timed out" in result.stderr
