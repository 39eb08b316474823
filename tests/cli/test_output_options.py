"""``-o json|yaml`` and ``-q`` on every command that prints a resource; broker error details.

Covers: every leaf command of the typer tree accepts both ``-o/--output`` and ``-q/--quiet``
except the few that print no resource (listed with the reason); table-driven over the
commands that lacked them, ``-o json`` prints the resource (or, for a delete, ``{kind, id,
deleted}``) and ``-q`` prints its id (for ``create``, the id then the one-time PAK; for
``rotate-pak``, the new PAK), and what they print is what the broker then holds; a refused
request prints each ``details.fields`` entry as ``field: reason`` (allowed values of an enum);
a table on a narrow terminal keeps an id whole on one line (the other columns fold).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import pytest
from typer.core import TyperCommand

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Cli, describe, unique
from tests.cli.test_help import LEAVES, name_of

# Commands that print no resource, and why.
WITHOUT_OUTPUT = {
    ("serve",): "runs the broker",
    ("agent", "run"): "runs the agent",
    ("db", "upgrade"): "prints a schema revision",
    ("login",): "saves a profile and prints where",
    ("agents", "labels", "remove"): "prints a confirmation; nothing is left to show",
    ("agents", "annotations", "remove"): "prints a confirmation; nothing is left to show",
    ("agents", "targets", "remove"): "prints a confirmation; nothing is left to show",
    ("stacks", "labels", "remove"): "prints a confirmation; nothing is left to show",
    ("stacks", "annotations", "remove"): "prints a confirmation; nothing is left to show",
    ("templates", "labels", "remove"): "prints a confirmation; nothing is left to show",
    ("templates", "annotations", "remove"): "prints a confirmation; nothing is left to show",
}


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[name_of(p) for p, _ in LEAVES])
def test_every_command_that_prints_a_resource_has_output_and_quiet(
    path: tuple[str, ...], command: TyperCommand
) -> None:
    options = {opt for param in command.params for opt in param.opts}
    if path in WITHOUT_OUTPUT:
        return
    assert {"-o", "--output", "-q", "--quiet"} <= options, name_of(path)


@dataclass(frozen=True)
class World:
    admin: BrokkrClient
    agent: wire.Agent
    stack: wire.Stack
    # Not yet targeted at the agent (``stack`` is).
    spare: wire.Stack
    generator: wire.Generator


Args = Callable[[World], list[str]]
# (command, its arguments, what -q prints: "id" of the record, "id+pak", "pak").
CASES: list[tuple[str, Args, str]] = [
    ("agents activate", lambda w: [str(w.agent.id)], "id"),
    ("agents deactivate", lambda w: [str(w.agent.id)], "id"),
    ("agents update", lambda w: [str(w.agent.id), "--status", "ACTIVE"], "id"),
    ("agents create", lambda w: ["--name", unique("a"), "--cluster", unique("c")], "id+pak"),
    ("agents rotate-pak", lambda w: [str(w.agent.id)], "pak"),
    ("agents delete", lambda w: [str(w.agent.id)], "id"),
    ("agents labels add", lambda w: [str(w.agent.id), unique("env")], "id"),
    ("agents labels list", lambda w: [str(w.agent.id)], "ids"),
    ("agents annotations add", lambda w: [str(w.agent.id), unique("k"), "v"], "id"),
    ("agents annotations list", lambda w: [str(w.agent.id)], "ids"),
    ("agents targets add", lambda w: [str(w.agent.id), w.spare.name], "id"),
    ("agents targets list", lambda w: [str(w.agent.id)], "ids"),
    ("generators create", lambda w: ["--name", unique("g")], "id+pak"),
    ("generators update", lambda w: [str(w.generator.id), "--inactive"], "id"),
    ("generators rotate-pak", lambda w: [str(w.generator.id)], "pak"),
    ("generators delete", lambda w: [str(w.generator.id)], "id"),
    ("stacks update", lambda w: [w.stack.name, "--description", "d"], "id"),
    ("stacks delete", lambda w: [w.stack.name], "id"),
    ("stacks labels add", lambda w: [w.stack.name, unique("env")], "id"),
    ("stacks labels list", lambda w: [w.stack.name], "ids"),
    ("stacks annotations add", lambda w: [w.stack.name, unique("k"), "v"], "id"),
    ("stacks annotations list", lambda w: [w.stack.name], "ids"),
]


@pytest.mark.parametrize(("command", "args", "quiet"), CASES, ids=[c for c, _, _ in CASES])
def test_json_and_quiet_output(
    cli: Cli, admin: BrokkrClient, command: str, args: Args, quiet: str
) -> None:
    as_json = cli.ok(*command.split(), *args(world_of(admin)), "-o", "json")
    shown = json.loads(as_json.stdout)
    assert shown, describe(as_json)
    if command.endswith("delete"):
        assert shown["deleted"] is True and shown["kind"] == command.split()[0].rstrip("s")
    if quiet == "pak":
        assert shown["pak"].startswith("brokkr_")

    lines = cli.ok(*command.split(), *args(world_of(admin)), "-q").stdout.splitlines()
    if quiet == "id":
        assert len(lines) == 1 and UUID(lines[0])
    elif quiet == "ids":
        assert lines and all(UUID(line) for line in lines)
    elif quiet == "id+pak":
        assert len(lines) == 2 and UUID(lines[0]) and lines[1].startswith("brokkr_")
        with BrokkrClient(cli.broker.url, lines[1]) as created:
            identity = created.auth.whoami()
        assert UUID(lines[0]) in (identity.agent, identity.generator)
    else:
        assert len(lines) == 1 and lines[0].startswith("brokkr_")


def world_of(admin: BrokkrClient) -> World:
    """A fresh agent (with a label, annotation and target), generator and stack per call, so
    every run of a command (json, then quiet) has something to act on and to list."""
    agent = admin.agents.create(name=unique("agent"), cluster_name=unique("cluster")).agent
    generator = admin.generators.create(name=unique("gen")).generator
    stack = admin.stacks.create(name=unique("web"), generator_id=generator.id)
    admin.agents.add_label(agent.id, unique("env"))
    admin.agents.add_annotation(agent.id, unique("k"), "v")
    admin.agents.add_target(agent.id, stack.id)
    admin.stacks.add_label(stack.id, unique("env"))
    admin.stacks.add_annotation(stack.id, unique("k"), "v")
    spare = admin.stacks.create(name=unique("spare"), generator_id=generator.id)
    return World(admin=admin, agent=agent, stack=stack, spare=spare, generator=generator)


def test_whoami_quiet_prints_the_identity(cli: Cli, admin: BrokkrClient) -> None:
    assert cli.ok("whoami", "-q").stdout == "admin\n"
    created = admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    assert cli.ok("whoami", "-q", pak=created.initial_pak).stdout == f"{created.agent.id}\n"


def test_a_table_keeps_ids_whole_on_a_narrow_terminal(cli: Cli, admin: BrokkrClient) -> None:
    created = admin.agents.create(name=unique("agent"), cluster_name=unique("cluster")).agent
    table = cli.ok("agents", "get", str(created.id), env={"COLUMNS": "60"}).stdout
    assert str(created.id) in table, table


def test_a_refused_request_prints_each_field_and_its_reason(cli: Cli, admin: BrokkrClient) -> None:
    agent = admin.agents.create(name=unique("agent"), cluster_name=unique("cluster")).agent
    bad_label = cli.fails("agents", "labels", "add", str(agent.id), "has space")
    assert "(422 validation_failed)" in bad_label.stderr
    assert "  label: has characters or a form that is not allowed" in bad_label.stderr
    assert "no whitespace" in bad_label.stderr
    assert "regex" not in bad_label.stderr
    assert admin.agents.list_labels(agent.id) == []
