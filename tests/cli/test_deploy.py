"""``brokkr deploy STACK -f …`` against a real broker, with the test playing the agents.

Covers: a file, a directory (only *.yaml/*.yml, sorted by name, joined as one multi-document
YAML), stdin (``-f -``) and repeated ``-f``, each stored byte for byte (checked with ``objects
get --content``); JSON and quiet output of the created object; a stack given by name or id;
invalid manifests (the broker's message naming the document, exit 1), missing paths, empty
directories and empty input (exit 2), an unknown stack (exit 1); and ``--wait``, run in a thread
while the test, with the agents' own PAKs, polls their target state and reports: two ACTIVE
agents reporting SUCCESS → exit 0 and a summary listing both (an INACTIVE agent with the same
label is not waited for); one FAILURE → exit 1; nobody reporting with ``--timeout 1`` → exit 3;
a stack that reaches no active agent (only inactive ones, or none) → exit 4 at once with an
error; unparsable YAML is refused before anything is sent, naming file, line and column.
``--wait --healthy``, the test also reporting health with the agents' PAKs: both healthy →
exit 0 with a health summary; one failing with ImagePullBackOff → exit 1 naming the agent, the
condition and the failing resource's message; one never reporting → exit 3 at --timeout naming
it; ``--healthy`` without ``--wait`` → usage error, nothing deployed.
Deploys use a generator PAK, as a CI pipeline would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import Result

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Broker, Cli, describe, unique

CONFIG_A = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  key: one\n"
CONFIG_B = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"
REPORT_DEADLINE = 15.0


@dataclass(frozen=True)
class Agent:
    id: UUID
    name: str
    pak: str


@dataclass(frozen=True)
class Fleet:
    """A generator's stack, labelled; agents with the same label: two active, one not."""

    stack: wire.Stack
    generator_pak: str
    active: tuple[Agent, Agent]
    inactive: Agent


def new_agent(admin: BrokkrClient, label: str, *, active: bool) -> Agent:
    created = admin.agents.create(name=unique("edge"), cluster_name=unique("cluster"))
    if active:
        admin.agents.activate(created.agent.id)
    admin.agents.add_label(created.agent.id, label)
    return Agent(created.agent.id, created.agent.name, created.initial_pak)


@pytest.fixture
def fleet(admin: BrokkrClient, stack: wire.Stack, generator_pak: str) -> Fleet:
    label = unique("fleet")
    admin.stacks.add_label(stack.id, label)
    first, second = (new_agent(admin, label, active=True) for _ in range(2))
    return Fleet(
        stack=stack,
        generator_pak=generator_pak,
        active=(first, second),
        inactive=new_agent(admin, label, active=False),
    )


def content_of(cli: Cli, object_id: str) -> str:
    return cli.ok("objects", "get", object_id, "--content").stdout


def only_id(result: Result) -> str:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, describe(result)
    return str(UUID(lines[0]))


# --- manifests ------------------------------------------------------------------------------


def test_deploy_a_file_stores_it_as_is(
    cli: Cli, tmp_path: Path, stack: wire.Stack, generator_pak: str
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(SERVICE, encoding="utf-8")

    result = cli.ok("deploy", stack.name, "-f", str(manifest), pak=generator_pak)
    header = next(line for line in result.stdout.splitlines() if "┃" in line)
    assert "sequence_id" in header and "yaml_checksum" in header
    created = only_id(cli.ok("stacks", "objects", stack.name, "-q"))
    assert created in result.stdout and str(stack.id) in result.stdout
    assert content_of(cli, created) == SERVICE

    again = cli.ok(
        "deploy", str(stack.id), "--file", str(manifest), "-o", "json", pak=generator_pak
    )
    data = json.loads(again.stdout)
    assert (data["yaml_content"], data["stack_id"]) == (SERVICE, str(stack.id))
    assert data["is_deletion_marker"] is False
    assert data["id"] != created


def test_deploy_a_directory_joins_its_yaml_files_in_name_order(
    cli: Cli, tmp_path: Path, stack: wire.Stack, generator_pak: str
) -> None:
    folder = tmp_path / "k8s"
    (folder / "nested").mkdir(parents=True)
    (folder / "b.yaml").write_text(CONFIG_B.rstrip(), encoding="utf-8")  # no final newline
    (folder / "a.yml").write_text(CONFIG_A, encoding="utf-8")
    (folder / "c-service.YAML").write_text(SERVICE, encoding="utf-8")  # suffix case ignored
    (folder / "notes.txt").write_text("kind: not a manifest\n", encoding="utf-8")
    (folder / "values.json").write_text("{}", encoding="utf-8")
    (folder / "nested" / "ignored.yaml").write_text("not: a manifest\n", encoding="utf-8")

    result = cli.ok("deploy", stack.name, "-f", f"{folder}/", "-q", pak=generator_pak)
    deployed = only_id(result)
    expected = CONFIG_A + "---\n" + CONFIG_B + "---\n" + SERVICE
    assert content_of(cli, deployed) == expected


def test_deploy_from_stdin_and_several_sources(
    cli: Cli, tmp_path: Path, stack: wire.Stack, generator_pak: str
) -> None:
    from_stdin = only_id(
        cli.ok("deploy", stack.name, "-f", "-", "-q", input=SERVICE, pak=generator_pak)
    )
    assert content_of(cli, from_stdin) == SERVICE

    manifest = tmp_path / "a.yaml"
    manifest.write_text(CONFIG_A, encoding="utf-8")
    combined = only_id(
        cli.ok(
            "deploy",
            stack.name,
            "-f",
            str(manifest),
            "-f",
            "-",
            "-q",
            input=SERVICE,
            pak=generator_pak,
        )
    )
    assert content_of(cli, combined) == CONFIG_A + "---\n" + SERVICE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            CONFIG_A + "---\napiVersion: v1\nmetadata:\n  name: x\n",
            "document 1: missing or empty kind",
        ),
        (CONFIG_A + "---\n- just\n- a list\n", "document 1: is not a mapping"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "document 0: missing or empty metadata.name",
        ),
    ],
)
def test_invalid_manifests_are_refused_with_the_brokers_message(
    cli: Cli, stack: wire.Stack, generator_pak: str, content: str, message: str
) -> None:
    result = cli.fails("deploy", stack.name, "-f", "-", input=content, pak=generator_pak)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "(422 " in result.stderr
    assert result.stdout == ""
    assert cli.ok("stacks", "objects", stack.name, "-q").stdout == ""


def test_unparsable_yaml_is_refused_at_its_file_line_and_column(
    cli: Cli, tmp_path: Path, stack: wire.Stack, generator_pak: str
) -> None:
    folder = tmp_path / "k8s"
    folder.mkdir()
    (folder / "a.yaml").write_text(CONFIG_A, encoding="utf-8")
    broken = folder / "b.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n", encoding="utf-8")
    result = cli("deploy", stack.name, "-f", str(folder), pak=generator_pak)
    assert result.exit_code == 2, describe(result)
    assert f"{broken}:5:1: not valid YAML" in " ".join(result.stderr.split()), result.stderr
    from_stdin = cli("deploy", stack.name, "-f", "-", input="kind: [unclosed\n", pak=generator_pak)
    assert from_stdin.exit_code == 2, describe(from_stdin)
    assert "<stdin>:2:1: not valid YAML" in " ".join(from_stdin.stderr.split())
    assert cli.ok("stacks", "objects", stack.name, "-q").stdout == ""


def test_sources_that_hold_nothing_are_usage_errors(
    cli: Cli, tmp_path: Path, stack: wire.Stack, generator_pak: str
) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "README.md").write_text("nothing to deploy\n", encoding="utf-8")
    cases = [
        (["-f", str(tmp_path / "missing.yaml")], None, "does not exist"),
        (["-f", str(empty_dir)], None, "holds no .yaml or .yml file"),
        (["-f", "-"], "\n  \n", "the manifests are empty"),
    ]
    for files, stdin, message in cases:
        result = cli("deploy", stack.name, *files, input=stdin, pak=generator_pak)
        assert result.exit_code == 2, describe(result)
        assert message in result.stderr
    unknown = cli.fails("deploy", "no-such-stack", "-f", "-", input=SERVICE, pak=generator_pak)
    assert unknown.exit_code == 1
    assert "no stack named 'no-such-stack'" in unknown.stderr


# --- --wait ---------------------------------------------------------------------------------


@contextmanager
def deploying(cli: Cli, fleet: Fleet, *options: str) -> Iterator[Future[Result]]:
    """``brokkr deploy STACK -f - --wait -q …`` in a thread, joined when the block ends."""
    args = (fleet.stack.name, "-f", "-", "--wait", "--interval", "0.2", "-q", *options)
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(cli, "deploy", *args, pak=fleet.generator_pak, input=SERVICE)


def report(
    broker: Broker, agent: Agent, stack: wire.Stack, status: wire.EventStatus, message: str
) -> UUID:
    """Play the agent: poll the target state until the stack's object shows up, then report."""
    deadline = time.monotonic() + REPORT_DEADLINE
    with BrokkrClient(broker.url, agent.pak) as as_agent:
        while time.monotonic() < deadline:
            state = as_agent.agents.target_state(agent.id)
            mine = [item for item in state.objects or [] if item.stack_id == stack.id]
            if mine:
                as_agent.agents.report_event(
                    agent.id, deployment_object_id=mine[-1].id, status=status, message=message
                )
                return mine[-1].id
            time.sleep(0.1)
    raise AssertionError(f"{agent.name} never received the deployment")


def summary_line(result: Result, agent: Agent) -> str:
    lines = [line for line in result.stderr.splitlines() if agent.name in line and "│" in line]
    assert len(lines) == 1, describe(result)
    return lines[0]


def test_wait_exits_0_when_every_active_agent_reports_success(
    cli: Cli, broker: Broker, fleet: Fleet
) -> None:
    with deploying(cli, fleet, "--timeout", "20") as running:
        received = {
            report(broker, agent, fleet.stack, "SUCCESS", f"applied on {agent.name}")
            for agent in fleet.active
        }
        result = running.result(timeout=30)

    assert result.exit_code == 0, describe(result)
    assert received == {UUID(only_id(result))}
    for agent in fleet.active:
        line = summary_line(result, agent)
        assert "SUCCESS" in line and f"applied on {agent.name}" in line
    assert f"not waiting for 1 inactive agent(s): {fleet.inactive.name}" in result.stderr
    assert not [
        line for line in result.stderr.splitlines() if fleet.inactive.name in line and "│" in line
    ]
    assert "error" not in result.stderr


def test_wait_exits_1_when_an_agent_reports_failure(cli: Cli, broker: Broker, fleet: Fleet) -> None:
    good, bad = fleet.active
    with deploying(cli, fleet, "--timeout", "20") as running:
        report(broker, good, fleet.stack, "SUCCESS", "applied")
        report(broker, bad, fleet.stack, "FAILURE", "ImagePullBackOff")
        result = running.result(timeout=30)

    assert result.exit_code == 1, describe(result)
    assert "1 agent(s) reported FAILURE" in result.stderr
    assert "SUCCESS" in summary_line(result, good)
    failed = summary_line(result, bad)
    assert "FAILURE" in failed and "ImagePullBackOff" in failed


def test_wait_exits_3_when_nobody_reports_in_time(cli: Cli, fleet: Fleet) -> None:
    result = cli(
        "deploy",
        fleet.stack.name,
        "-f",
        "-",
        "--wait",
        "--interval",
        "0.2",
        "--timeout",
        "1",
        input=SERVICE,
        pak=fleet.generator_pak,
    )
    assert result.exit_code == 3, describe(result)
    assert "timed out: 2 agent(s) have not reported" in result.stderr
    for agent in fleet.active:
        assert "PENDING" in summary_line(result, agent)


@pytest.mark.parametrize("idle_agents", [0, 1])
def test_wait_fails_at_once_when_no_active_agent_receives_the_stack(
    cli: Cli, admin: BrokkrClient, stack: wire.Stack, generator_pak: str, idle_agents: int
) -> None:
    label = unique("nobody")
    admin.stacks.add_label(stack.id, label)
    idle = [new_agent(admin, label, active=False) for _ in range(idle_agents)]

    result = cli(
        "deploy",
        stack.name,
        "-f",
        "-",
        "--wait",
        "--timeout",
        "600",
        "-q",
        input=SERVICE,
        pak=generator_pak,
    )
    # 4 comes only from the check before the first poll: it did not wait for --timeout.
    assert result.exit_code == 4, describe(result)
    assert "error: no active agent receives this stack: nothing was deployed" in result.stderr
    if idle:
        assert f"not waiting for 1 inactive agent(s): {idle[0].name}" in result.stderr
    only_id(result)


# --- --wait --healthy -----------------------------------------------------------------------

HEALTHY = wire.HealthSummary(pods_ready=1, pods_total=1)
FAILING = wire.HealthSummary(
    pods_ready=0,
    pods_total=1,
    conditions=["ImagePullBackOff"],
    resources=[
        wire.ResourceHealth(
            kind="Deployment",
            name="web",
            namespace="shop",
            ready=False,
            message="0/1 replicas available: ImagePullBackOff",
        )
    ],
)


def report_health(
    broker: Broker, agent: Agent, object_id: UUID, status: str, summary: wire.HealthSummary
) -> None:
    with BrokkrClient(broker.url, agent.pak) as as_agent:
        as_agent.health.report(
            agent.id,
            [
                wire.DeploymentObjectHealthUpdate(
                    id=object_id, status=status, checked_at=datetime.now(UTC), summary=summary
                )
            ],
        )


def test_healthy_exits_0_once_every_agent_reports_the_object_healthy(
    cli: Cli, broker: Broker, fleet: Fleet
) -> None:
    with deploying(cli, fleet, "--healthy", "--timeout", "30") as running:
        for agent in fleet.active:
            object_id = report(broker, agent, fleet.stack, "SUCCESS", "applied")
            report_health(broker, agent, object_id, "healthy", HEALTHY)
        result = running.result(timeout=40)

    assert result.exit_code == 0, describe(result)
    for agent in fleet.active:
        rows = [
            line
            for line in result.stderr.splitlines()
            if agent.name in line and "│" in line and "healthy" in line
        ]
        assert len(rows) == 1 and "1/1" in rows[0], describe(result)
    assert "error" not in result.stderr


def test_healthy_fails_with_the_reason_when_an_agent_reports_failing(
    cli: Cli, broker: Broker, fleet: Fleet
) -> None:
    good, bad = fleet.active
    with deploying(cli, fleet, "--healthy", "--timeout", "30") as running:
        for agent in fleet.active:
            object_id = report(broker, agent, fleet.stack, "SUCCESS", "applied")
        report_health(broker, good, object_id, "healthy", HEALTHY)
        report_health(broker, bad, object_id, "failing", FAILING)
        result = running.result(timeout=40)

    assert result.exit_code == 1, describe(result)
    assert "error: 1 agent(s) report the deployment failing" in result.stderr
    assert f"{bad.name} (" in result.stderr and "): ImagePullBackOff" in result.stderr
    assert "Deployment shop/web: 0/1 replicas available: ImagePullBackOff" in result.stderr


def test_healthy_times_out_naming_the_agents_not_healthy(
    cli: Cli, broker: Broker, fleet: Fleet
) -> None:
    good, silent = fleet.active
    with deploying(cli, fleet, "--healthy", "--timeout", "5") as running:
        for agent in fleet.active:
            object_id = report(broker, agent, fleet.stack, "SUCCESS", "applied")
        report_health(broker, good, object_id, "healthy", HEALTHY)
        result = running.result(timeout=20)

    assert result.exit_code == 3, describe(result)
    flat = " ".join(result.stderr.split())
    assert f"timed out: 1 agent(s) not healthy yet: {silent.name} (no report)" in flat


def test_healthy_needs_wait(cli: Cli, stack: wire.Stack, generator_pak: str) -> None:
    result = cli("deploy", stack.name, "-f", "-", "--healthy", input=SERVICE, pak=generator_pak)
    assert result.exit_code == 2, describe(result)
    assert "--healthy needs --wait" in result.stderr
    assert cli.ok("stacks", "objects", stack.name, "-q").stdout == ""
