"""docs/operations.md names only what exists: commands, options, variables, files, chart values.

Covers: every `brokkr …` command line of the guide (in its ```sh blocks and inline code spans,
also after `$(`, a pipe, `--` or `VAR=value` prefixes) names a real command path whose `--help`
exits 0, with only options that command (or the global callback) declares; every `BROKKR__…`
variable is a broker or agent setting or is documented in README.md, and every other `BROKKR_…`
variable is read somewhere in src/brokkr; every relative link and every `deploy/…` or `bench/…`
path in the guide exists; every values block (```yaml starting `# values for deploy/helm/…`)
and every `--set` uses keys the chart's values.yaml declares (the free-form `config` table
against the broker's settings sections); the guide's PAK generator prints a well-formed PAK
whose SHA-256, computed as the guide does, is the one the broker stores. In-process (typer's
CliRunner), so it stays fast.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from brokkr.agent import settings as agent_settings
from brokkr.broker import settings as broker_settings
from brokkr.broker.domain import paks
from brokkr.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "operations.md"
TEXT = DOC.read_text(encoding="utf-8")

SH_BLOCKS = re.findall(r"^```sh\n(.*?)^```$", TEXT, flags=re.MULTILINE | re.DOTALL)
YAML_BLOCKS = re.findall(r"^```yaml\n(.*?)^```$", TEXT, flags=re.MULTILINE | re.DOTALL)
# Inline code outside fenced blocks (the fences themselves hold no single backtick pairs).
PROSE = re.sub(r"^```.*?^```$", "", TEXT, flags=re.MULTILINE | re.DOTALL)
INLINE = re.findall(r"`([^`\n]+)`", PROSE)

# Where a shell command may begin: line start, `$(`, a pipe, `;`, `&&`, or after `kubectl exec
# … --`; optionally behind `VAR=value` assignments. `-n brokkr` (a namespace) is no command.
COMMAND_START = re.compile(
    r"(?:^|\$\(|\||;|&&|\s--\s)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*brokkr(?=\s+\S)"
)
SEPARATORS = {";", "&", "&&", "|", "||", "(", ")"}


def shell_lines() -> Iterator[str]:
    """Each logical line of the ```sh blocks (continuations joined), then each inline span."""
    for block in SH_BLOCKS:
        yield from block.replace("\\\n", " ").splitlines()
    yield from INLINE


def brokkr_invocations() -> list[list[str]]:
    """The argument list of every `brokkr` command line, up to the end of its command."""
    found = []
    for line in shell_lines():
        for match in COMMAND_START.finditer(line):
            lexer = shlex.shlex(line[match.end() :], posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            args = []
            for token in lexer:
                if token in SEPARATORS:
                    break
                args.append(token)
            found.append(args)
    return found


INVOCATIONS = brokkr_invocations()
ROOT_COMMAND = typer.main.get_command(app)


def _subcommands(command: Any) -> dict[str, Any]:
    # Typer ships its own copy of click: a group is whatever has sub-commands.
    subcommands: dict[str, Any] = getattr(command, "commands", {})
    return subcommands


def resolve(args: list[str]) -> tuple[list[str], Any, list[str]]:
    """The command path named by ``args`` (global options skipped), the command, the rest."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if "=" not in option and not _is_flag(ROOT_COMMAND, option):
            rest.pop(0)
    path: list[str] = []
    command: Any = ROOT_COMMAND
    while rest and rest[0] in _subcommands(command):
        path.append(rest.pop(0))
        command = _subcommands(command)[path[-1]]
    return path, command, rest


def _is_flag(command: Any, option: str) -> bool:
    return any(
        getattr(param, "is_flag", False) and option in param.opts for param in command.params
    )


def _options(command: Any) -> set[str]:
    return {
        name
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    } | {"--help"}


def test_the_guide_runs_brokkr_commands() -> None:
    paths = {tuple(resolve(args)[0]) for args in INVOCATIONS}
    # The guide's core tasks: install, verify, upgrade, rotate.
    for needed in [
        ("serve",),
        ("login",),
        ("agents", "create"),
        ("agents", "list"),
        ("agents", "connections"),
        ("db", "upgrade"),
        ("admin", "rotate-pak"),
        ("agents", "rotate-pak"),
    ]:
        assert needed in paths, f"the guide no longer shows `brokkr {' '.join(needed)}`"


@pytest.mark.parametrize("args", INVOCATIONS, ids=" ".join)
def test_each_command_line_names_a_command_and_its_options(args: list[str]) -> None:
    path, command, rest = resolve(args)
    assert path, f"`brokkr {' '.join(args)}` names no command"
    assert not _subcommands(command), f"`brokkr {' '.join(path)}` is a group"
    unknown = [
        token.split("=", 1)[0]
        for token in rest
        if token.startswith("-") and token.split("=", 1)[0] not in _options(command)
    ]
    assert not unknown, f"`brokkr {' '.join(path)}` has no option {unknown}"


def test_every_command_path_answers_help() -> None:
    runner = CliRunner()
    for path in sorted({tuple(resolve(args)[0]) for args in INVOCATIONS}):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def _setting_variables(settings_type: type[msgspec.Struct]) -> set[str]:
    names = set()
    for field in msgspec.structs.fields(settings_type):
        section = field.type
        if isinstance(section, type) and issubclass(section, msgspec.Struct):
            names |= {
                f"BROKKR__{field.name}__{key.name}".upper()
                for key in msgspec.structs.fields(section)
            }
        else:
            names.add(f"BROKKR__{field.name}".upper())
    return names


def test_every_variable_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    settings = _setting_variables(broker_settings.Settings) | _setting_variables(
        agent_settings.Settings
    )
    named = set(re.findall(r"\bBROKKR__[A-Z0-9_]*[A-Z0-9]\b", TEXT))
    assert named, "the guide names no BROKKR__ variable"
    unknown = {name for name in named if name not in settings and name not in readme}
    assert not unknown, f"not a setting: {sorted(unknown)}"
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "src" / "brokkr").rglob("*.py")
    )
    others = set(re.findall(r"\bBROKKR_[A-Z][A-Z0-9_]*[A-Z0-9]\b", TEXT))
    assert not {name for name in others if f'"{name}"' not in source}, others


def test_every_linked_file_exists() -> None:
    links = [
        target.split("#", 1)[0]
        for target in re.findall(r"\]\(([^)\s]+)\)", TEXT)
        if not target.startswith(("http://", "https://", "#", "mailto:"))
    ]
    assert links
    missing = [link for link in links if not (DOC.parent / link).exists()]
    # Paths given in code (commands run from the repository root, values block headers).
    mentioned = set(re.findall(r"(?<![\w./-])((?:deploy|bench|docs)/[\w./-]*\w)", TEXT))
    missing += sorted(path for path in mentioned if not (ROOT / path).exists())
    assert not missing, missing


def _unknown_keys(given: Any, defaults: Any, prefix: str) -> Iterator[str]:
    """Keys of ``given`` that ``defaults`` does not declare; below an empty or non-mapping
    default (free-form maps such as podAnnotations) anything goes."""
    if not isinstance(given, Mapping) or not isinstance(defaults, Mapping) or not defaults:
        return
    for key, value in given.items():
        if key not in defaults:
            yield f"{prefix}{key}"
        else:
            yield from _unknown_keys(value, defaults[key], f"{prefix}{key}.")


def _settings_shape(settings_type: Any) -> dict[str, Any]:
    """A settings Struct as nested dicts of its keys (leaves: None)."""
    return {
        field.name: (
            _settings_shape(field.type)
            if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct)
            else None
        )
        for field in msgspec.structs.fields(settings_type)
    }


def _chart_values(chart: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((ROOT / chart / "values.yaml").read_text())
    return values


def test_values_blocks_and_sets_use_declared_chart_values() -> None:
    checked = 0
    for block in YAML_BLOCKS:
        header = re.match(r"# values for (deploy/helm/[\w-]+)\n", block)
        if header is None:
            continue
        chart = header.group(1)
        given = yaml.safe_load(block)
        defaults = _chart_values(chart)
        unknown = list(
            _unknown_keys({k: v for k, v in given.items() if k != "config"}, defaults, "")
        )
        if "config" in given:
            shape = _settings_shape(broker_settings.Settings)
            unknown += _unknown_keys(given["config"], shape, "config.")
        assert not unknown, f"{chart} declares no {unknown}"
        checked += 1
    assert checked >= 2, "the guide shows values for both charts"
    for line in shell_lines():
        install = re.search(r"helm (?:install|upgrade) \S+ (deploy/helm/[\w-]+)(.*)", line)
        if install is None:
            continue
        for key in re.findall(r"--set\s+([\w.]+)=", install.group(2)):
            node: Any = _chart_values(install.group(1))
            for part in key.split("."):
                assert isinstance(node, Mapping) and part in node, f"no value {key}"
                node = node[part]


def test_the_pak_generator_makes_a_pak_the_broker_accepts() -> None:
    assert "brokkr admin new-pak -q > admin-pak.txt" in TEXT
    assert "ADMIN_PAK_HASH=$(sed -n 2p admin-pak.txt)" in TEXT
    pak, digest = subprocess.run(
        [str(Path(sys.executable).with_name("brokkr")), "admin", "new-pak", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert paks.is_well_formed(pak)
    assert digest == paks.hash_key(pak)
