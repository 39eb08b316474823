"""``brokkr templates …``, ``brokkr deploy --template`` and provenance in ``brokkr objects get``,
against a real broker (subprocess, SQLite; the client suite covers PostgreSQL).

Covers: create from a template file and a YAML or JSON schema file (version 1, then 2 for the
same name; a YAML schema's timestamps stay text), list, get by id, by NAME and by NAME@VERSION
(``--content`` byte for byte), update (a new version), delete of one version, labels and
annotations add|list|remove, with table, ``-o json`` and ``-q`` output; ``render`` with
``--param`` (JSON values: 3 is a number) over ``--params-file`` (one YAML document; two are
refused): the YAML on stdout and "valid" on stderr, exit 0, nothing stored; an invalid
result or invalid parameters exit 1 listing every violation; ``deploy --template NAME@1``
stores exactly what ``render`` printed, and ``objects get`` shows its provenance (table and
``-o json``; null for a pushed object); ``deploy`` with both or neither of ``-f`` and
``--template``, ``--param`` without ``--template``, a malformed ``--param``, an unknown template
and a version that is not a number are refused with a message. Generators use a generator PAK.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import msgspec
import pytest

from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Cli, describe, unique

CONTENT = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"
    'data:\n  replicas: "{{ replicas }}"\n'
)
SCHEMA_YAML = """\
type: object
properties:
  name: {type: string}
  replicas: {type: integer, minimum: 1}
required: [name, replicas]
"""
RENDERED = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  replicas: "3"\n'


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    content, schema = tmp_path / "cm.yaml.tera", tmp_path / "cm.schema.yaml"
    content.write_text(CONTENT, encoding="utf-8")
    schema.write_text(SCHEMA_YAML, encoding="utf-8")
    return str(content), str(schema)


def created_template(cli: Cli, files: tuple[str, str], name: str, pak: str) -> wire.StackTemplate:
    content, schema = files
    result = cli.ok(
        "templates", "create", "--name", name, "-f", content, "--schema", schema, "-o", "json",
        pak=pak,
    )  # fmt: skip
    return msgspec.json.decode(result.stdout, type=wire.StackTemplate)


def test_create_list_get_update_and_delete(
    cli: Cli, files: tuple[str, str], generator_pak: str, admin: BrokkrClient
) -> None:
    name = unique("cm")
    first = created_template(cli, files, name, generator_pak)
    assert (first.name, first.version, first.template_content) == (name, 1, CONTENT)
    assert json.loads(first.parameters_schema)["required"] == ["name", "replicas"]

    listed = cli.ok("templates", "list", pak=generator_pak)
    assert name in listed.stdout and "version" in listed.stdout
    assert first.id in {UUID(line) for line in cli.ok("templates", "list", "-q").stdout.split()}
    assert cli.ok("templates", "get", name, "--content", pak=generator_pak).stdout == CONTENT

    content, schema = files
    schema_json = Path(schema).with_suffix(".json")
    schema_json.write_text('{"type": "object"}', encoding="utf-8")
    updated = cli.ok(
        "templates", "update", name, "-f", content, "--schema", str(schema_json), "-o", "json",
        pak=generator_pak,
    )  # fmt: skip
    second = json.loads(updated.stdout)
    assert (second["version"], second["parameters_schema"]) == (2, '{"type": "object"}')
    newest = json.loads(cli.ok("templates", "get", name, "-o", "json", pak=generator_pak).stdout)
    assert newest["id"] == second["id"]
    by_version = cli.ok("templates", "get", f"{name}@1", "-q", pak=generator_pak).stdout
    assert by_version == f"{first.id}\n"

    deleted = cli.ok("templates", "delete", f"{name}@1", "-o", "json", pak=generator_pak)
    assert json.loads(deleted.stdout) == {"kind": "template", "id": str(first.id), "deleted": True}
    missing = cli.fails("templates", "get", f"{name}@1", pak=generator_pak)
    assert f"no template named '{name}@1'" in missing.stderr
    assert cli.ok("templates", "get", str(second["id"]), "-q").stdout == f"{second['id']}\n"
    bad_version = cli.fails("templates", "get", f"{name}@latest", pak=generator_pak)
    assert bad_version.exit_code == 2 and "must be a number" in bad_version.stderr


def test_yaml_files_load_as_the_broker_loads_yaml(
    cli: Cli, files: tuple[str, str], generator_pak: str, tmp_path: Path
) -> None:
    content, _ = files
    schema = tmp_path / "dated.schema.yaml"
    schema.write_text("type: object\nproperties: {since: {default: 2024-01-02}}\n", "utf-8")
    created = json.loads(
        cli.ok(
            "templates", "create", "--name", unique("cm"), "-f", content, "--schema", str(schema),
            "-o", "json", pak=generator_pak,
        ).stdout
    )  # fmt: skip
    assert (
        json.loads(created["parameters_schema"])["properties"]["since"]["default"] == "2024-01-02"
    )

    two = tmp_path / "two.yaml"
    two.write_text("name: web\n---\nreplicas: 1\n", "utf-8")
    refused = cli("templates", "render", created["name"], "--params-file", str(two))
    assert refused.exit_code == 2 and "more than one YAML document" in refused.stderr


def test_labels_and_annotations(cli: Cli, files: tuple[str, str], generator_pak: str) -> None:
    name = unique("cm")
    template = created_template(cli, files, name, generator_pak)
    added = cli.ok("templates", "labels", "add", name, "env:prod", "-q", pak=generator_pak)
    assert UUID(added.stdout.strip())
    listed = json.loads(
        cli.ok("templates", "labels", "list", name, "-o", "json", pak=generator_pak).stdout
    )
    assert [(x["template_id"], x["label"]) for x in listed] == [(str(template.id), "env:prod")]
    cli.ok("templates", "annotations", "add", name, "region", "eu", pak=generator_pak)
    shown = cli.ok("templates", "annotations", "list", name, pak=generator_pak).stdout
    assert "region" in shown and "eu" in shown

    removed = cli.ok("templates", "labels", "remove", name, "env:prod", pak=generator_pak)
    assert removed.stdout == "removed label env:prod\n"
    cli.ok("templates", "annotations", "remove", name, "region", pak=generator_pak)
    assert cli.ok("templates", "labels", "list", name, "-q", pak=generator_pak).stdout == ""
    assert cli.ok("templates", "annotations", "list", name, "-q", pak=generator_pak).stdout == ""


def test_render_then_deploy_stores_what_render_printed(
    cli: Cli,
    files: tuple[str, str],
    generator_pak: str,
    stack: wire.Stack,
    tmp_path: Path,
    admin: BrokkrClient,
) -> None:
    name = unique("cm")
    template = created_template(cli, files, name, generator_pak)
    params_file = tmp_path / "params.yaml"
    params_file.write_text("name: web\nreplicas: 1\n", encoding="utf-8")
    options = ("--params-file", str(params_file), "--param", "replicas=3")

    rendered = cli.ok("templates", "render", f"{name}@1", *options, pak=generator_pak)
    assert rendered.stdout == RENDERED
    assert f"valid: {name} version 1" in rendered.stderr
    as_json = json.loads(
        cli.ok("templates", "render", name, *options, "-o", "json", pak=generator_pak).stdout
    )
    assert (as_json["yaml_content"], as_json["valid"]) == (RENDERED, True)
    assert admin.stacks.list_deployment_objects(stack.id) == []

    deployed = cli.ok(
        "deploy", stack.name, "--template", f"{name}@1", *options, "-q", pak=generator_pak
    )
    object_id = deployed.stdout.strip()
    assert cli.ok("objects", "get", object_id, "--content").stdout == rendered.stdout

    table = cli.ok("objects", "get", object_id).stdout
    assert f"rendered from template {template.id} version 1" in table
    assert '{"name": "web", "replicas": 3}' in table
    provenance = json.loads(cli.ok("objects", "get", object_id, "-o", "json").stdout)["provenance"]
    assert (provenance["template_id"], provenance["template_version"]) == (str(template.id), 1)
    assert provenance["parameters"] == {"name": "web", "replicas": 3}


def test_a_pushed_object_shows_no_provenance(
    cli: Cli, generator_pak: str, stack: wire.Stack
) -> None:
    pushed = cli.ok("deploy", stack.name, "-f", "-", "-q", input=RENDERED, pak=generator_pak)
    object_id = pushed.stdout.strip()
    assert (
        json.loads(cli.ok("objects", "get", object_id, "-o", "json").stdout)["provenance"] is None
    )
    assert "rendered from template" not in cli.ok("objects", "get", object_id).stdout


def test_invalid_parameters_and_invalid_output_exit_1(
    cli: Cli, files: tuple[str, str], generator_pak: str, stack: wire.Stack, admin: BrokkrClient
) -> None:
    name = unique("cm")
    created_template(cli, files, name, generator_pak)
    invalid = cli.fails(
        "deploy", stack.name, "--template", name, "--param", "name=7", "--param", "replicas=0",
        pak=generator_pak,
    )  # fmt: skip
    assert invalid.exit_code == 1 and "invalid_parameters" in invalid.stderr, describe(invalid)
    assert "/name" in invalid.stderr and "/replicas" in invalid.stderr
    assert admin.stacks.list_deployment_objects(stack.id) == []

    broken = cli.fails(
        "templates", "render", name, "--param", "name=[unclosed", "--param", "replicas=2",
        pak=generator_pak,
    )  # fmt: skip
    assert broken.exit_code == 1 and "not a valid deployment object" in broken.stderr


def test_deploy_refuses_a_confused_command_line(
    cli: Cli, files: tuple[str, str], generator_pak: str, stack: wire.Stack
) -> None:
    name = unique("cm")
    created_template(cli, files, name, generator_pak)
    for args, message in (
        (("-f", files[0], "--template", name), "either -f/--file or --template"),
        ((), "either -f/--file or --template"),
        (("-f", "-", "--param", "a=1"), "parameters need --template"),
        (("--template", name, "--param", "novalue"), "is not KEY=VALUE"),
    ):
        refused = cli("deploy", stack.name, *args, input=RENDERED, pak=generator_pak)
        assert refused.exit_code == 2 and message in refused.stderr, describe(refused)
    unknown = cli.fails("deploy", stack.name, "--template", unique("none"), pak=generator_pak)
    assert unknown.exit_code == 1 and "no template named" in unknown.stderr
