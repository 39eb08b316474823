"""Every ``brokkr`` resource command against a real broker (subprocess, SQLite), run in-process.

Covers, for each group, table output (header and a value), ``-o json`` (parsed), ``--quiet``
(ids only) and ``-o yaml`` where the command offers it:

- ``login``: checks the PAK, writes ``profiles.toml`` (mode 0600) with URL and PAK, a wrong PAK
  saves nothing; commands then work with no ``BROKKR_URL``/``BROKKR_PAK``; ``--profile``
  selects another saved profile; an unknown profile and a missing URL exit 2 with a message;
- ``whoami`` for the admin, agent and generator PAKs;
- ``agents``: create (prints the PAK once, and it works), list, get, search, update (and a bad
  ``--status``), activate, deactivate, rotate-pak (old PAK refused, new one works), delete,
  stacks, target-state, events, labels/annotations/targets add|list|remove (targets by stack
  name; an unknown stack name fails);
- ``generators``: create, list, get, update ``--inactive``, rotate-pak, delete;
- ``stacks``: create, list (``--generator``), get by name and by id, update, delete, agents,
  objects, labels and annotations;
- ``objects get`` (``--content`` prints the YAML byte for byte), ``events list/get``,
  ``audit list`` (filters, "N of M records");
- broker errors: the broker's message on stderr and exit 1 (404 unknown agent, 403 generator
  listing agents, 409 duplicate stack name, 401 revoked PAK).
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
import uuid
from dataclasses import dataclass
from uuid import UUID

import pytest
import yaml
from typer.testing import Result

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Broker, Cli, unique

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: 'blue'\n"
PAK_LINE = re.compile(r"^PAK \(shown once\): (\S+)$", re.MULTILINE)


def ids(result: Result) -> list[UUID]:
    """``--quiet`` output: every line is an id, nothing else."""
    lines = result.stdout.splitlines()
    return [UUID(line) for line in lines]


def as_json(result: Result) -> object:
    return json.loads(result.stdout)


def table(result: Result, *headers: str) -> str:
    """A rich table with these column headers (and no JSON/YAML)."""
    text = result.stdout
    assert "┃" in text, text
    header_line = next(line for line in text.splitlines() if "┃" in line)
    for header in headers:
        assert f" {header} " in header_line, (header, header_line)
    return text


@dataclass(frozen=True)
class Agent:
    id: UUID
    name: str
    cluster: str
    pak: str


def new_agent(admin: BrokkrClient, *, active: bool = False) -> Agent:
    created = admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    if active:
        admin.agents.activate(created.agent.id)
    agent = created.agent
    return Agent(agent.id, agent.name, agent.cluster_name, created.initial_pak)


def new_generator(admin: BrokkrClient) -> tuple[wire.Generator, str]:
    created = admin.generators.create(name=unique("gen"), description="tests")
    return created.generator, created.pak


# --- login, profiles, whoami ---------------------------------------------------------------


def test_login_saves_a_private_profile_that_later_commands_use(
    cli: Cli, broker: Broker, admin: BrokkrClient
) -> None:
    no_env = {"BROKKR_URL": None, "BROKKR_PAK": None}
    profiles = cli.config_dir / "profiles.toml"

    wrong = cli.fails("login", "--url", broker.url, "--pak", "brokkr_nope_nope", env=no_env)
    assert "401" in wrong.stderr
    assert not profiles.exists()

    logged = cli.ok("login", "--url", broker.url, "--pak", broker.admin_pak, env=no_env)
    assert f"logged in to {broker.url} as admin" in logged.stdout
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    saved = tomllib.loads(profiles.read_text(encoding="utf-8"))["profiles"]
    assert saved["default"]["url"] == broker.url
    assert saved["default"]["pak"] == broker.admin_pak

    me = cli.ok("whoami", env=no_env)
    assert "True" in table(me, "admin", "agent", "generator")
    through_profile = unique("web")
    cli.ok("stacks", "create", "--name", through_profile, "-q", env=no_env)
    assert admin.stacks.find(through_profile) is not None

    generator, generator_pak = new_generator(admin)
    ci = cli.ok("login", "--url", broker.url, "--pak", generator_pak, "--profile", "ci", env=no_env)
    assert f"as generator {generator.id}" in ci.stdout
    assert "'ci'" in ci.stdout
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    saved = tomllib.loads(profiles.read_text(encoding="utf-8"))["profiles"]
    assert set(saved) == {"default", "ci"}
    assert saved["ci"] == {"url": broker.url, "pak": generator_pak}

    as_ci = cli.ok("--profile", "ci", "whoami", env=no_env)
    assert str(generator.id) in table(as_ci, "generator")
    assert "False" in as_ci.stdout
    # The default profile is still the admin.
    assert "True" in cli.ok("whoami", env=no_env).stdout

    unknown = cli("--profile", "nope", "whoami", env=no_env)
    assert unknown.exit_code == 2
    assert "no profile named 'nope'" in unknown.stderr
    assert "brokkr login --profile nope" in unknown.stderr


def test_no_broker_url_anywhere_exits_2_with_a_clear_message(cli: Cli) -> None:
    result = cli("stacks", "list", env={"BROKKR_URL": None, "BROKKR_PAK": None})
    assert result.exit_code == 2
    assert "no broker URL" in result.stderr
    assert "brokkr login --url URL --pak PAK" in result.stderr
    assert result.stdout == ""


def test_whoami_tells_agent_and_generator_paks_apart(cli: Cli, admin: BrokkrClient) -> None:
    agent = new_agent(admin)
    generator, generator_pak = new_generator(admin)

    as_agent = table(cli.ok("whoami", pak=agent.pak), "admin", "agent", "generator")
    assert str(agent.id) in as_agent and "False" in as_agent
    as_generator = table(cli.ok("whoami", pak=generator_pak), "generator")
    assert str(generator.id) in as_generator
    as_json = json.loads(cli.ok("whoami", "-o", "json", pak=generator_pak).stdout)
    assert as_json == {"admin": False, "agent": None, "generator": str(generator.id)}


def test_url_and_pak_options_override_the_environment(cli: Cli, broker: Broker) -> None:
    result = cli.ok(
        "--url",
        broker.url,
        "--pak",
        broker.admin_pak,
        "whoami",
        env={"BROKKR_URL": "http://127.0.0.1:9", "BROKKR_PAK": "brokkr_bad_bad"},
    )
    assert "True" in result.stdout


# --- agents -------------------------------------------------------------------------------


def test_agents_create_prints_the_pak_once_and_list_get_search_show_the_agent(
    cli: Cli, admin: BrokkrClient
) -> None:
    name, cluster = unique("edge"), unique("prod-eu")

    created = cli.ok("agents", "create", "--name", name, "--cluster", cluster)
    text = table(created, "id", "name", "cluster_name", "status")
    assert name in text and "INACTIVE" in text
    match = PAK_LINE.search(created.stdout)
    assert match, created.stdout
    pak = match.group(1)
    assert created.stdout.count(pak) == 1
    found = cli.ok("agents", "search", "--name", name, "--cluster", cluster, "-q")
    [agent_id] = ids(found)
    assert str(agent_id) in text
    assert str(agent_id) in cli.ok("whoami", pak=pak).stdout  # the printed PAK works

    listed = cli.ok("agents", "list")
    assert name in table(listed, "id", "name", "cluster_name", "status", "last_heartbeat")
    assert pak not in listed.stdout
    rows = as_json(cli.ok("agents", "list", "-o", "json"))
    assert isinstance(rows, list)
    mine = [row for row in rows if row["id"] == str(agent_id)]
    assert mine and mine[0]["name"] == name and mine[0]["cluster_name"] == cluster
    assert agent_id in ids(cli.ok("agents", "list", "--quiet"))

    shown = yaml.safe_load(cli.ok("agents", "get", str(agent_id), "-o", "yaml").stdout)
    assert shown["id"] == str(agent_id)
    assert shown["status"] == "INACTIVE"
    assert shown["last_heartbeat"] is None
    assert ids(cli.ok("agents", "get", str(agent_id), "-q")) == [agent_id]
    assert name in table(cli.ok("agents", "get", str(agent_id)), "name")
    searched = as_json(
        cli.ok("agents", "search", "--name", name, "--cluster", cluster, "-o", "json")
    )
    assert isinstance(searched, dict) and searched["id"] == str(agent_id)

    as_json_create = as_json(
        cli.ok("agents", "create", "--name", unique("edge"), "--cluster", cluster, "-o", "json")
    )
    assert isinstance(as_json_create, dict)
    assert as_json_create["initial_pak"].startswith("brokkr_")
    assert as_json_create["agent"]["cluster_name"] == cluster


def test_agents_update_activate_deactivate_rotate_and_delete(cli: Cli, admin: BrokkrClient) -> None:
    agent = new_agent(admin)
    target = str(agent.id)
    new_name = unique("renamed")

    updated = as_json(
        cli.ok("agents", "update", target, "--name", new_name, "--cluster", "c2", "-o", "json")
    )
    assert isinstance(updated, dict)
    assert (updated["name"], updated["cluster_name"]) == (new_name, "c2")
    bad = cli("agents", "update", target, "--status", "SLEEPING")
    assert bad.exit_code == 2
    assert "--status must be ACTIVE or INACTIVE" in bad.stderr

    assert "ACTIVE" in table(cli.ok("agents", "activate", target), "status")
    assert admin.agents.get(agent.id).status == "ACTIVE"
    assert "INACTIVE" in table(cli.ok("agents", "deactivate", target), "status")
    assert admin.agents.get(agent.id).status == "INACTIVE"

    rotated = cli.ok("agents", "rotate-pak", target).stdout.strip()
    assert rotated.startswith("brokkr_") and rotated != agent.pak
    refused = cli.fails("whoami", pak=agent.pak)
    assert "401" in refused.stderr
    assert target in cli.ok("whoami", pak=rotated).stdout

    deleted = cli.ok("agents", "delete", target)
    assert f"deleted agent {target}" in deleted.stdout
    gone = cli.fails("agents", "get", target)
    assert gone.exit_code == 1
    assert "error: agent not found (404 agent_not_found)" in gone.stderr


def test_agent_labels_annotations_and_targets(cli: Cli, admin: BrokkrClient) -> None:
    agent = str(new_agent(admin).id)
    stack = admin.stacks.create(name=unique("web"))
    label = unique("env")

    added = cli.ok("agents", "labels", "add", agent, label)
    assert label in table(added, "id", "label")
    labels = as_json(cli.ok("agents", "labels", "list", agent, "-o", "json"))
    assert isinstance(labels, list) and [row["label"] for row in labels] == [label]
    assert label in table(cli.ok("agents", "labels", "list", agent), "label")
    assert f"removed label {label}" in cli.ok("agents", "labels", "remove", agent, label).stdout
    assert as_json(cli.ok("agents", "labels", "list", agent, "-o", "json")) == []

    shown = cli.ok("agents", "annotations", "add", agent, "region", "eu-west")
    assert "eu-west" in table(shown, "id", "key", "value")
    annotations = as_json(cli.ok("agents", "annotations", "list", agent, "-o", "json"))
    assert isinstance(annotations, list)
    assert [(row["key"], row["value"]) for row in annotations] == [("region", "eu-west")]
    assert "region" in table(cli.ok("agents", "annotations", "list", agent), "key", "value")
    removed = cli.ok("agents", "annotations", "remove", agent, "region")
    assert "removed annotation region" in removed.stdout
    assert as_json(cli.ok("agents", "annotations", "list", agent, "-o", "json")) == []

    targeted = cli.ok("agents", "targets", "add", agent, stack.name)  # by name
    assert str(stack.id) in table(targeted, "id", "agent_id", "stack_id")
    targets = as_json(cli.ok("agents", "targets", "list", agent, "-o", "json"))
    assert isinstance(targets, list)
    assert [row["stack_id"] for row in targets] == [str(stack.id)]
    assert str(stack.id) in table(cli.ok("agents", "targets", "list", agent), "stack_id")
    assert stack.name in table(cli.ok("agents", "stacks", agent), "id", "name")
    assert ids(cli.ok("agents", "stacks", agent, "-q")) == [stack.id]
    stacks = as_json(cli.ok("agents", "stacks", agent, "-o", "json"))
    assert isinstance(stacks, list) and stacks[0]["name"] == stack.name

    missing = cli.fails("agents", "targets", "add", agent, "no-such-stack")
    assert "no stack named 'no-such-stack'" in missing.stderr
    gone = cli.ok("agents", "targets", "remove", agent, stack.name)
    assert f"removed target {stack.name}" in gone.stdout
    assert as_json(cli.ok("agents", "targets", "list", agent, "-o", "json")) == []
    assert cli.ok("agents", "stacks", agent, "-q").stdout == ""


def test_agent_target_state_and_events(cli: Cli, broker: Broker, admin: BrokkrClient) -> None:
    agent = new_agent(admin, active=True)
    stack = admin.stacks.create(name=unique("web"))
    admin.agents.add_target(agent.id, stack.id)
    deployed = admin.stacks.deploy(stack.id, MANIFEST)

    state = cli.ok("agents", "target-state", str(agent.id))
    assert str(deployed.id) in table(state, "id", "sequence_id", "stack_id", "yaml_checksum")
    assert ids(cli.ok("agents", "target-state", str(agent.id), "-q")) == [deployed.id]
    full = yaml.safe_load(
        cli.ok("agents", "target-state", str(agent.id), "--full", "-o", "yaml").stdout
    )
    assert [item["yaml_content"] for item in full] == [MANIFEST]

    with BrokkrClient(broker.url, agent.pak) as as_agent:
        event = as_agent.agents.report_event(
            agent.id, deployment_object_id=deployed.id, status="SUCCESS", message="applied 1"
        )
    events = cli.ok("agents", "events", str(agent.id))
    assert "applied 1" in table(events, "id", "agent_id", "deployment_object_id", "status")
    assert ids(cli.ok("agents", "events", str(agent.id), "-q")) == [event.id]
    rows = as_json(cli.ok("agents", "events", str(agent.id), "-o", "json", "--limit", "5"))
    assert isinstance(rows, list)
    assert [(row["status"], row["deployment_object_id"]) for row in rows] == [
        ("SUCCESS", str(deployed.id))
    ]
    # Applied objects leave the incremental state; --full still lists them.
    assert cli.ok("agents", "target-state", str(agent.id), "-q").stdout == ""
    assert ids(cli.ok("agents", "target-state", str(agent.id), "--full", "-q")) == [deployed.id]


# --- generators -----------------------------------------------------------------------------


def test_generators_create_list_get_update_rotate_delete(cli: Cli, admin: BrokkrClient) -> None:
    name = unique("ci")
    created = cli.ok("generators", "create", "--name", name, "--description", "main pipeline")
    assert name in table(created, "id", "name", "description", "is_active")
    match = PAK_LINE.search(created.stdout)
    assert match, created.stdout
    pak = match.group(1)
    assert created.stdout.count(pak) == 1
    generator_id = next(g.id for g in admin.generators.list() if g.name == name)
    assert str(generator_id) in cli.ok("whoami", pak=pak).stdout

    listed = cli.ok("generators", "list")
    assert name in table(listed, "id", "name", "description", "is_active")
    assert "admin-generator" in listed.stdout
    rows = as_json(cli.ok("generators", "list", "-o", "json"))
    assert isinstance(rows, list)
    assert {"name": name, "description": "main pipeline", "is_active": True}.items() <= next(
        row for row in rows if row["id"] == str(generator_id)
    ).items()
    assert generator_id in ids(cli.ok("generators", "list", "-q"))

    shown = yaml.safe_load(cli.ok("generators", "get", str(generator_id), "-o", "yaml").stdout)
    assert shown["name"] == name
    assert ids(cli.ok("generators", "get", str(generator_id), "-q")) == [generator_id]
    assert "main pipeline" in table(cli.ok("generators", "get", str(generator_id)), "description")

    rotated = cli.ok("generators", "rotate-pak", str(generator_id)).stdout.strip()
    assert rotated.startswith("brokkr_") and rotated != pak
    assert str(generator_id) in cli.ok("whoami", pak=rotated).stdout

    updated = as_json(
        cli.ok(
            "generators",
            "update",
            str(generator_id),
            "--description",
            "paused",
            "--inactive",
            "-o",
            "json",
        )
    )
    assert isinstance(updated, dict)
    assert (updated["description"], updated["is_active"]) == ("paused", False)
    assert admin.generators.get(generator_id).is_active is False
    reactivated = cli.ok("generators", "update", str(generator_id), "--active")
    assert "True" in table(reactivated, "is_active")

    deleted = cli.ok("generators", "delete", str(generator_id))
    assert f"deleted generator {generator_id}" in deleted.stdout
    assert "404" in cli.fails("generators", "get", str(generator_id)).stderr


def test_a_generator_pak_may_not_list_agents(cli: Cli, admin: BrokkrClient) -> None:
    _, generator_pak = new_generator(admin)
    result = cli.fails("agents", "list", pak=generator_pak)
    assert result.exit_code == 1
    assert re.search(r"^error: .+ \(403 \w+\)$", result.stderr.strip()), result.stderr
    assert result.stdout == ""


# --- stacks ---------------------------------------------------------------------------------


def test_stacks_create_list_get_update_delete(
    cli: Cli, broker: Broker, admin: BrokkrClient
) -> None:
    generator, generator_pak = new_generator(admin)
    name = unique("web")

    created = cli.ok(
        "stacks", "create", "--name", name, "--description", "storefront", pak=generator_pak
    )
    text = table(created, "id", "name", "generator_id", "description")
    assert name in text and str(generator.id) in text
    stack_id = ids(cli.ok("stacks", "get", name, "-q"))[0]

    duplicate = cli.fails("stacks", "create", "--name", name)
    assert duplicate.exit_code == 1
    assert "a stack with this name already exists (409 stack_name_taken)" in duplicate.stderr

    assert name in table(cli.ok("stacks", "list"), "id", "name", "generator_id", "description")
    own = as_json(cli.ok("stacks", "list", "-o", "json", pak=generator_pak))
    assert isinstance(own, list) and [row["name"] for row in own] == [name]
    assert ids(cli.ok("stacks", "list", "--generator", str(generator.id), "-q")) == [stack_id]
    assert stack_id in ids(cli.ok("stacks", "list", "-q"))

    by_name = as_json(cli.ok("stacks", "get", name, "-o", "json"))
    by_id = as_json(cli.ok("stacks", "get", str(stack_id), "-o", "json"))
    assert by_name == by_id
    assert isinstance(by_id, dict) and by_id["description"] == "storefront"
    assert yaml.safe_load(cli.ok("stacks", "get", name, "-o", "yaml").stdout)["id"] == str(stack_id)

    renamed = unique("shop")
    updated = as_json(
        cli.ok("stacks", "update", name, "--name", renamed, "--description", "EU", "-o", "json")
    )
    assert isinstance(updated, dict) and (updated["name"], updated["description"]) == (
        renamed,
        "EU",
    )
    assert "no stack named" in cli.fails("stacks", "get", name).stderr

    assert f"deleted stack {renamed}" in cli.ok("stacks", "delete", renamed).stdout
    assert "no stack named" in cli.fails("stacks", "get", renamed).stderr
    assert "404" in cli.fails("stacks", "get", str(stack_id)).stderr


def test_stack_labels_annotations_agents_and_objects(cli: Cli, admin: BrokkrClient) -> None:
    stack = admin.stacks.create(name=unique("web"))
    label = unique("tier")

    assert label in table(cli.ok("stacks", "labels", "add", stack.name, label), "id", "label")
    labels = as_json(cli.ok("stacks", "labels", "list", stack.name, "-o", "json"))
    assert isinstance(labels, list) and [row["label"] for row in labels] == [label]
    assert label in table(cli.ok("stacks", "labels", "list", str(stack.id)), "label")

    added = cli.ok("stacks", "annotations", "add", stack.name, "region", "eu")
    assert "region" in table(added, "id", "key", "value")
    annotations = as_json(cli.ok("stacks", "annotations", "list", stack.name, "-o", "json"))
    assert isinstance(annotations, list)
    assert [(row["key"], row["value"]) for row in annotations] == [("region", "eu")]
    assert "eu" in table(cli.ok("stacks", "annotations", "list", stack.name), "value")

    by_label = new_agent(admin, active=True)
    admin.agents.add_label(by_label.id, label)
    by_annotation = new_agent(admin)
    admin.agents.add_annotation(by_annotation.id, "region", "eu")
    reached = cli.ok("stacks", "agents", stack.name)
    text = table(reached, "id", "name", "cluster_name", "status")
    assert by_label.name in text and by_annotation.name in text
    assert set(ids(cli.ok("stacks", "agents", stack.name, "-q"))) == {
        by_label.id,
        by_annotation.id,
    }
    agents = as_json(cli.ok("stacks", "agents", stack.name, "-o", "json"))
    assert isinstance(agents, list)
    assert {row["name"]: row["status"] for row in agents} == {
        by_label.name: "ACTIVE",
        by_annotation.name: "INACTIVE",
    }

    first = admin.stacks.deploy(stack.id, MANIFEST)
    second = admin.stacks.deploy(stack.id, MANIFEST.replace("blue", "green"))
    objects = cli.ok("stacks", "objects", stack.name)
    assert str(second.id) in table(objects, "id", "sequence_id", "yaml_checksum")
    assert ids(cli.ok("stacks", "objects", stack.name, "-q")) == [second.id, first.id]
    newest = as_json(cli.ok("stacks", "objects", stack.name, "--limit", "1", "-o", "json"))
    assert isinstance(newest, list) and [row["id"] for row in newest] == [str(second.id)]
    assert newest[0]["sequence_id"] > first.sequence_id

    removed = cli.ok("stacks", "labels", "remove", stack.name, label)
    assert f"removed label {label}" in removed.stdout
    assert as_json(cli.ok("stacks", "labels", "list", stack.name, "-o", "json")) == []
    removed = cli.ok("stacks", "annotations", "remove", stack.name, "region")
    assert "removed annotation region" in removed.stdout
    assert as_json(cli.ok("stacks", "annotations", "list", stack.name, "-o", "json")) == []
    assert cli.ok("stacks", "agents", stack.name, "-q").stdout == ""


# --- objects, events, audit ----------------------------------------------------------------


def test_objects_get_prints_the_yaml_exactly_with_content(cli: Cli, admin: BrokkrClient) -> None:
    stack = admin.stacks.create(name=unique("web"))
    content = (
        "# keep this comment\n" + MANIFEST + "---\n" + MANIFEST.replace("settings", "b") + "\n"
    )
    deployed = admin.stacks.deploy(stack.id, content)

    assert cli.ok("objects", "get", str(deployed.id), "--content").stdout == content
    shown = table(cli.ok("objects", "get", str(deployed.id)), "id", "yaml_checksum")
    assert deployed.yaml_checksum in shown
    data = as_json(cli.ok("objects", "get", str(deployed.id), "-o", "json"))
    assert isinstance(data, dict)
    assert (data["yaml_content"], data["stack_id"]) == (content, str(stack.id))
    assert ids(cli.ok("objects", "get", str(deployed.id), "-q")) == [deployed.id]
    missing = cli.fails("objects", "get", str(uuid.uuid4()))
    assert "404" in missing.stderr and missing.stdout == ""


def test_events_list_and_get(cli: Cli, broker: Broker, admin: BrokkrClient) -> None:
    agent = new_agent(admin, active=True)
    other = new_agent(admin, active=True)
    stack = admin.stacks.create(name=unique("web"))
    for each in (agent, other):
        admin.agents.add_target(each.id, stack.id)
    deployed = admin.stacks.deploy(stack.id, MANIFEST)
    reported = {}
    outcomes: list[tuple[Agent, wire.EventStatus]] = [(agent, "SUCCESS"), (other, "FAILURE")]
    for each, status in outcomes:
        with BrokkrClient(broker.url, each.pak) as as_agent:
            reported[each.id] = as_agent.agents.report_event(
                each.id, deployment_object_id=deployed.id, status=status, message=f"{status} here"
            )

    listed = cli.ok("events", "list", "--object", str(deployed.id))
    text = table(listed, "id", "agent_id", "deployment_object_id", "status", "message")
    assert "SUCCESS here" in text and "FAILURE here" in text
    rows = as_json(cli.ok("events", "list", "--object", str(deployed.id), "-o", "json"))
    assert isinstance(rows, list)
    assert {row["agent_id"]: row["status"] for row in rows} == {
        str(agent.id): "SUCCESS",
        str(other.id): "FAILURE",
    }
    only_agent = ids(cli.ok("events", "list", "--agent", str(agent.id), "-q"))
    assert only_agent == [reported[agent.id].id]
    # An agent sees its own events only.
    own = ids(cli.ok("events", "list", "--object", str(deployed.id), "-q", pak=other.pak))
    assert own == [reported[other.id].id]
    page = ids(
        cli.ok(
            "events", "list", "--object", str(deployed.id), "--limit", "1", "--offset", "1", "-q"
        )
    )
    assert len(page) == 1

    event = reported[other.id]
    got = yaml.safe_load(cli.ok("events", "get", str(event.id), "-o", "yaml").stdout)
    assert (got["id"], got["status"], got["message"]) == (str(event.id), "FAILURE", "FAILURE here")
    assert "FAILURE here" in table(cli.ok("events", "get", str(event.id)), "message")
    assert ids(cli.ok("events", "get", str(event.id), "-q")) == [event.id]
    assert "404" in cli.fails("events", "get", str(uuid.uuid4())).stderr


def test_audit_list_filters_and_counts(cli: Cli, admin: BrokkrClient) -> None:
    agent = new_agent(admin)
    admin.agents.activate(agent.id)
    admin.agents.add_label(agent.id, unique("env"))
    target = str(agent.id)

    everything = as_json(cli.ok("audit", "list", "--resource-id", target, "-o", "json"))
    assert isinstance(everything, list)
    actions = [row["action"] for row in everything]
    assert {"agent.created", "agent.updated", "agent.label_added"} <= set(actions)
    assert all(row["resource_id"] == target for row in everything)
    total = len(everything)

    listed = cli.ok("audit", "list", "--resource-id", target)
    text = table(listed, "timestamp", "actor_type", "action", "resource_type", "resource_id")
    assert "agent.created" in text and target in text
    assert f"{total} of {total} records (offset 0)" in listed.stderr

    one = cli.ok("audit", "list", "--resource-id", target, "--limit", "1")
    assert f"1 of {total} records (offset 0)" in one.stderr
    created = as_json(
        cli.ok(
            "audit",
            "list",
            "--resource-id",
            target,
            "--action",
            "agent.created",
            "--actor-type",
            "admin",
            "--resource-type",
            "agent",
            "-o",
            "json",
        )
    )
    assert isinstance(created, list) and [row["action"] for row in created] == ["agent.created"]
    prefixed = as_json(
        cli.ok("audit", "list", "--resource-id", target, "--action", "agent.*", "-o", "json")
    )
    assert isinstance(prefixed, list) and len(prefixed) == total
    quiet = cli.ok("audit", "list", "--resource-id", target, "-q")
    assert [str(x) for x in ids(quiet)] == [row["id"] for row in everything]
    assert quiet.stderr == ""
    future = cli.ok("audit", "list", "--resource-id", target, "--from", "2999-01-01")
    assert "0 of 0 records" in future.stderr


def test_audit_is_for_admins_only(cli: Cli, admin: BrokkrClient) -> None:
    _, generator_pak = new_generator(admin)
    result = cli.fails("audit", "list", pak=generator_pak)
    assert "(403 " in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["agents", "get", "not-a-uuid"],
        ["agents", "list", "-o", "xml"],
    ],
)
def test_bad_arguments_are_usage_errors(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr or "is not one of" in result.stderr, result.stderr
