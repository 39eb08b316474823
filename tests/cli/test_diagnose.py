"""``brokkr diagnose DEPLOYMENT_OBJECT --agent A`` against a real broker, run in a thread while
the test plays the agent with its own PAK (lists its pending requests, claims, submits).

Covers: an answered request, the agent given by name or id, printed as a pods table (pod, owner,
phase, ready, restarts, container states with reasons, failing conditions), an events table and
each log tail under ``==> pod/container <==`` (``(previous)`` for the previous container), exit
0; -o json and -o yaml with the three documents decoded; documents in another shape printed as
sent; a claimed request left unanswered ends ``failed`` with its reason (the session broker
fails claims after 3 s), exit 1; nobody answering within --timeout, exit 3 naming the request
(-q prints only its id); an expired request's message (rendered from a response: the shortest
retention is a minute); and the refusals: an unknown or ambiguous agent name, a bad
--retention-minutes (the broker's 400), a generator's and an agent's PAK.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
import pytest
import yaml
from typer.testing import Result

from brokkr.cli import diagnose
from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Broker, Cli, describe, unique

SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"
ANSWER_DEADLINE = 15.0
FAST = ("--interval", "0.1")
PODS = [
    wire.PodStatus(
        name="web-1",
        namespace="shop",
        phase="Pending",
        owner="Deployment/web",
        conditions=[
            wire.PodCondition(condition_type="Ready", status="False", reason="ContainersNotReady")
        ],
        containers=[
            wire.ContainerStatus(
                name="app",
                ready=False,
                restart_count=3,
                state="Waiting",
                state_reason="CrashLoopBackOff",
                last_state_reason="OOMKilled",
            )
        ],
    )
]
EVENTS = [
    wire.DiagnosticEvent(
        event_type="Warning",
        reason="BackOff",
        message="Back-off restarting failed container",
        involved_object="web-1",
        involved_kind="Pod",
        namespace="shop",
        last_timestamp="2024-05-01T12:00:00Z",
        count=7,
    )
]
LOGS: wire.LogTails = {"web-1/app": "listening on :8080\n", "web-1/app/previous": "out of memory\n"}


@dataclass(frozen=True)
class Served:
    object_id: UUID
    agent: wire.Agent
    pak: str


@pytest.fixture
def served(broker: Broker, admin: BrokkrClient, stack: wire.Stack, generator_pak: str) -> Served:
    """An active agent targeted at the stack, which holds one deployment object."""
    with BrokkrClient(broker.url, generator_pak) as ci:
        object_id = ci.stacks.deploy(stack.id, SERVICE).id
    created = admin.agents.create(name=unique("edge"), cluster_name=unique("cluster"))
    admin.agents.activate(created.agent.id)
    admin.agents.add_target(created.agent.id, stack.id)
    return Served(object_id, created.agent, created.initial_pak)


def document(value: object) -> str:
    return msgspec.json.encode(value).decode()


def answer(
    broker: Broker,
    served: Served,
    *,
    pod_statuses: str = document(PODS),
    events: str = document(EVENTS),
    log_tails: str | None = document(LOGS),
    submit: bool = True,
) -> UUID:
    """Play the agent: wait for the request, claim it and (unless ``submit`` is False) answer."""
    deadline = time.monotonic() + ANSWER_DEADLINE
    with BrokkrClient(broker.url, served.pak) as as_agent:
        while time.monotonic() < deadline:
            pending = as_agent.diagnostics.list_pending(served.agent.id)
            if pending:
                request_id = pending[0].id
                as_agent.diagnostics.claim(request_id)
                if submit:
                    as_agent.diagnostics.submit(
                        request_id,
                        pod_statuses=pod_statuses,
                        events=events,
                        log_tails=log_tails,
                        collected_at=datetime.now(UTC),
                    )
                return request_id
            time.sleep(0.1)
    raise AssertionError("the diagnostic request never reached the agent")


@contextmanager
def diagnosing(cli: Cli, served: Served, *options: str) -> Iterator[Future[Result]]:
    """``brokkr diagnose OBJECT …`` in a thread, joined when the block ends."""
    args = ("diagnose", str(served.object_id), *FAST, *options)
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(cli, *args)


def row_of(text: str, marker: str) -> str:
    rows = [line for line in text.splitlines() if marker in line and "│" in line]
    assert len(rows) == 1, text
    return rows[0]


def test_an_answer_is_printed_as_pods_events_and_logs(
    cli: Cli, broker: Broker, served: Served
) -> None:
    with diagnosing(cli, served, "--agent", served.agent.name, "--timeout", "30") as running:
        answer(broker, served)
        result = running.result(timeout=40)

    assert result.exit_code == 0, describe(result)
    shown = result.stdout
    assert f"collected by agent {served.agent.name} ({served.agent.cluster_name})" in shown
    pod = row_of(shown, "shop/web-1")
    for cell in ("Deployment/web", "Pending", "0/1", "3", "app: Waiting CrashLoopBackOff"):
        assert cell in pod, cell
    assert "last ended OOMKilled" in shown
    assert "Ready: ContainersNotReady" in shown
    event = row_of(shown, "Pod/web-1")
    for cell in ("2024-05-01T12:00:00Z", "Warning", "BackOff", "7", "Back-off restarting"):
        assert cell in event, cell
    lines = shown.splitlines()
    current = lines.index("==> web-1/app <==")
    assert lines[current + 1] == "listening on :8080"
    previous = lines.index("==> web-1/app (previous) <==")
    assert lines[previous + 1] == "out of memory"
    assert "error" not in result.stderr


@pytest.mark.parametrize("output_format", ["json", "yaml"])
def test_json_and_yaml_decode_the_documents(
    cli: Cli, broker: Broker, served: Served, output_format: str
) -> None:
    options = ("--agent", str(served.agent.id), "-o", output_format, "--requested-by", "oncall")
    with diagnosing(cli, served, *options) as running:
        request_id = answer(broker, served)
        result = running.result(timeout=40)

    assert result.exit_code == 0, describe(result)
    data = json.loads(result.stdout) if output_format == "json" else yaml.safe_load(result.stdout)
    assert data["request"]["id"] == str(request_id)
    assert (data["request"]["status"], data["request"]["requested_by"]) == ("completed", "oncall")
    assert data["result"]["pod_statuses"] == msgspec.to_builtins(PODS)
    assert data["result"]["events"] == msgspec.to_builtins(EVENTS)
    assert data["result"]["log_tails"] == LOGS


def test_documents_of_another_shape_are_printed_as_sent(
    cli: Cli, broker: Broker, served: Served
) -> None:
    pods, events = '{"pods": "elsewhere"}', '[{"what": "happened"}]'
    with diagnosing(cli, served, "--agent", served.agent.name) as running:
        answer(broker, served, pod_statuses=pods, events=events, log_tails='["a line"]')
        result = running.result(timeout=40)

    assert result.exit_code == 0, describe(result)
    for heading, text in (
        ("pods", pods),
        ("events", events),
        ("logs", '["a line"]'),
    ):
        assert f"{heading} (not in the expected format, shown as sent):\n{text}\n" in result.stdout
    assert "==>" not in result.stdout
    with diagnosing(cli, served, "--agent", served.agent.name, "-o", "json") as running:
        answer(broker, served, pod_statuses=pods, events=events, log_tails=None)
        as_json = json.loads(running.result(timeout=40).stdout)
    assert as_json["result"]["pod_statuses"] == {"pods": "elsewhere"}
    assert as_json["result"]["events"] == [{"what": "happened"}]
    assert as_json["result"]["log_tails"] is None


def test_an_unanswered_claim_fails_with_its_reason(
    cli: Cli, broker: Broker, served: Served
) -> None:
    with diagnosing(cli, served, "--agent", served.agent.name, "--timeout", "60") as running:
        request_id = answer(broker, served, submit=False)
        result = running.result(timeout=70)

    assert result.exit_code == 1, describe(result)
    assert f"error: diagnostic request {request_id} failed: " in result.stderr
    assert "no reason given" not in result.stderr
    assert "==>" not in result.stdout


def test_nobody_answering_times_out(cli: Cli, served: Served) -> None:
    args = ("diagnose", str(served.object_id), "--agent", served.agent.name, "--timeout", "1")
    result = cli(*args, "-q")
    assert result.exit_code == 3, describe(result)
    request_id = UUID(result.stdout.strip())
    assert f"timed out after 1 s: diagnostic request {request_id} is still pending" in " ".join(
        result.stderr.split()
    )


def test_an_expired_request_says_the_agent_did_not_claim_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    expired = wire.DiagnosticResponse(
        request=wire.DiagnosticRequest(
            id=uuid4(),
            agent_id=uuid4(),
            deployment_object_id=uuid4(),
            status="expired",
            created_at=now,
            expires_at=now,
        )
    )
    assert diagnose.verdict(expired, "edge-1 (prod-eu)", 120) == 1
    assert capsys.readouterr().err == (
        f"error: diagnostic request {expired.request.id} expired: "
        "agent edge-1 (prod-eu) did not claim it in time\n"
    )


def test_refusals(cli: Cli, admin: BrokkrClient, served: Served, generator_pak: str) -> None:
    target = str(served.object_id)
    unknown = cli.fails("diagnose", target, "--agent", "no-such-agent")
    assert unknown.exit_code == 1 and "no agent named 'no-such-agent'" in unknown.stderr

    twin = admin.agents.create(name=served.agent.name, cluster_name=unique("other"))
    ambiguous = cli("diagnose", target, "--agent", served.agent.name)
    assert ambiguous.exit_code == 2, describe(ambiguous)
    flat = " ".join(ambiguous.stderr.split())
    assert f"agents in several clusters are named {served.agent.name!r}" in flat
    assert str(twin.agent.id) in flat

    bad = cli.fails("diagnose", target, "--agent", str(served.agent.id), "--retention-minutes", "0")
    assert "(400 invalid_diagnostic_request)" in bad.stderr
    as_generator = cli.fails("diagnose", target, "--agent", str(served.agent.id), pak=generator_pak)
    assert "(403 " in as_generator.stderr
    as_agent = cli.fails("diagnose", target, "--agent", str(served.agent.id), pak=served.pak)
    assert "(403 " in as_agent.stderr
    with BrokkrClient(cli.broker.url, cli.broker.admin_pak) as check:
        assert check.diagnostics.list_for_deployment_object(served.object_id) == []
