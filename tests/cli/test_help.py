"""``brokkr --help`` and the help of every group and command, found by walking the click tree.

Covers: the tree holds every documented group and entry point; each ``… --help`` exits 0 and
shows its usage line and a description whose first line is a summary (not just an example);
every option has a help text and every option and argument appears in the help; a group's help
lists its subcommands; every leaf command's help has an ``Example`` that runs that very command
(``brokkr <path> …``) and uses only options that command (or ``brokkr`` itself) accepts.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterator

import pytest
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner

from tests.cli.conftest import COMMAND, invoke

Command = TyperCommand | TyperGroup


def root() -> TyperGroup:
    assert isinstance(COMMAND, TyperGroup)
    return COMMAND


ROOT = root()


def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Command]]:
    assert isinstance(command, TyperCommand | TyperGroup), (path, type(command))
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(ROOT, ()))
LEAVES = [(path, command) for path, command in COMMANDS if isinstance(command, TyperCommand)]


def name_of(path: tuple[str, ...]) -> str:
    return " ".join(("brokkr", *path))


@functools.cache
def show_help(path: tuple[str, ...]) -> str:
    result = invoke(CliRunner(), [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def options_of(command: Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def example_of(command: Command) -> str:
    """The one ``Example:`` of a help text, its shell continuation lines (``\\``) joined."""
    lines = [line.strip() for line in (command.help or "").splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Example:")]
    assert len(starts) == 1, command.help
    example = lines[starts[0]].removeprefix("Example:").strip()
    following = iter(lines[starts[0] + 1 :])
    if not example:
        example = next(following, "")
    while example.endswith("\\"):
        example = example[:-1] + next(following, "")
    return example


def test_the_tree_holds_every_group_and_entry_point() -> None:
    assert set(ROOT.commands) == {
        "agent",
        "agents",
        "generators",
        "stacks",
        "templates",
        "objects",
        "events",
        "audit",
        "work-orders",
        "webhooks",
        "login",
        "whoami",
        "deploy",
        "health",
        "diagnose",
        "serve",
        "db",
        "admin",
    }
    paths = {name_of(path) for path, _ in LEAVES}
    for expected in (
        "brokkr agents labels add",
        "brokkr agents annotations remove",
        "brokkr agents targets list",
        "brokkr stacks labels list",
        "brokkr stacks annotations add",
        "brokkr generators rotate-pak",
        "brokkr objects get",
        "brokkr templates render",
        "brokkr templates labels add",
        "brokkr events get",
        "brokkr audit list",
        "brokkr db upgrade",
        "brokkr admin rotate-pak",
        "brokkr work-orders create",
        "brokkr work-orders log",
        "brokkr webhooks create",
        "brokkr webhooks deliveries",
    ):
        assert expected in paths
    assert len(LEAVES) > len(ROOT.commands)  # the walk went into the groups


def test_root_help_names_the_global_options_and_every_group() -> None:
    text = show_help(())
    for word in (
        "--profile",
        "BROKKR_PROFILE",
        "--url",
        "--pak",
        "--timeout-seconds",
        "brokkr login",
        *ROOT.commands,
    ):
        assert word in text, word


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[name_of(p) for p, _ in COMMANDS])
def test_help_is_complete(path: tuple[str, ...], command: Command) -> None:
    text = show_help(path)
    assert f"Usage: {name_of(path)}" in text
    description = (command.help or "").strip()
    assert description, f"{name_of(path)} has no help text"
    summary = description.splitlines()[0]
    assert not summary.startswith("Example"), f"{name_of(path)}: the summary is only an example"
    assert summary in text
    for param in command.params:
        if isinstance(param, TyperOption):
            assert param.help, f"{name_of(path)} {param.opts[0]} has no help"
            assert param.opts[0] in text, param.opts[0]
        else:
            assert isinstance(param, TyperArgument)
            assert param.name and param.name in text, param.name
    if isinstance(command, TyperGroup):
        for name in command.commands:
            assert name in text, name


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[name_of(p) for p, _ in LEAVES])
def test_every_command_has_an_example_that_it_accepts(
    path: tuple[str, ...], command: Command
) -> None:
    text = show_help(path)
    assert "Example" in text
    example = example_of(command)
    words = shlex.split(example)
    start = words.index("brokkr")
    invocation = words[start + 1 :]
    # Global options come right after `brokkr`; then the command path, then its own options.
    global_options = options_of(ROOT)
    while invocation and invocation[0].startswith("-"):
        assert invocation[0] in global_options, (example, invocation[0])
        invocation = invocation[2:]
    assert tuple(invocation[: len(path)]) == path, example
    accepted = options_of(command)
    for word in invocation[len(path) :]:
        if word.startswith("-") and word != "-":
            assert word.split("=", 1)[0] in accepted, (example, word)
