"""`brokkr templates …`: versioned templates, their labels and annotations, and rendering.

A template is named by id or by ``NAME[@VERSION]`` (the newest version when none is given).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.client import BrokkrClient
from brokkr.common import wire, yaml_guard

app = typer.Typer(
    help="Templates: versioned, parameterised deployment objects (JSON Schema parameters).",
    no_args_is_help=True,
)
label_app = typer.Typer(
    help="A template's labels: it can only be deployed to stacks that carry them all.",
    no_args_is_help=True,
)
annotation_app = typer.Typer(
    help="A template's annotations: it can only be deployed to stacks that carry them all.",
    no_args_is_help=True,
)
app.add_typer(label_app, name="labels")
app.add_typer(annotation_app, name="annotations")

TemplateArgument = typer.Argument(..., help="Template id, or NAME[@VERSION] (default: newest).")
ContentOption = typer.Option(
    ..., "--file", "-f", help="The template (Tera syntax), or - for stdin."
)
SchemaOption = typer.Option(
    ..., "--schema", "-s", help="JSON Schema of the parameters (a JSON or YAML file)."
)
ParamOption = typer.Option(
    None,
    "--param",
    help="A parameter KEY=VALUE; VALUE is read as JSON when it parses (3, true, [1]), else as "
    "text. Repeatable; wins over --params-file.",
)
ParamsFileOption = typer.Option(
    None, "--params-file", help="Parameters as a YAML or JSON mapping (- for stdin)."
)


def template_of(brokkr: BrokkrClient, reference: str) -> wire.StackTemplate:
    """A template version given by id or by ``NAME[@VERSION]``."""
    try:
        return brokkr.templates.get(UUID(reference))
    except ValueError:
        pass
    name, _, version = reference.partition("@")
    if version and not version.isdigit():
        raise typer.BadParameter(f"{reference!r}: the version after @ must be a number")
    found = brokkr.templates.find(name, int(version) if version else None)
    if found is None:
        output.error(f"no template named {reference!r}")
        raise typer.Exit(1)
    return found


def parameters_of(pairs: list[str] | None, params_file: str | None) -> dict[str, Any]:
    """The parameters of --params-file, then each --param KEY=VALUE over them."""
    parameters: dict[str, Any] = {}
    if params_file is not None:
        loaded = _load(params_file, "--params-file")
        if loaded is not None and not isinstance(loaded, dict):
            raise typer.BadParameter(
                "must hold a mapping of names to values", param_hint="--params-file"
            )
        parameters.update(loaded or {})
    for pair in pairs or []:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            parameters[key] = json.loads(value)
        except ValueError:
            parameters[key] = value
    return parameters


def _read(source: str, hint: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise typer.BadParameter(f"{path} does not exist", param_hint=hint)
    return path.read_text(encoding="utf-8")


def _load(source: str, hint: str) -> Any:
    return _parsed(_read(source, hint), source, hint)


def _parsed(text: str, source: str, hint: str) -> Any:
    """The one YAML (or JSON) document of ``text``, loaded as the broker and the agent load
    YAML: within the default limits, timestamps kept as text (so they stay JSON)."""
    try:
        documents = yaml_guard.load_all(text, yaml_guard.YamlLimits())
    except yaml_guard.YamlRejected as exc:
        raise typer.BadParameter(
            f"{source}: not valid YAML or JSON: {exc.reason}", param_hint=hint
        ) from exc
    if len(documents) > 1:
        raise typer.BadParameter(f"{source}: holds more than one YAML document", param_hint=hint)
    return documents[0] if documents else None


def _schema_text(source: str) -> str:
    """The schema as JSON text: a JSON file as written, a YAML file converted."""
    text = _read(source, "--schema")
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(_parsed(text, source, "--schema"))
    return text


@app.command("list")
def list_templates(
    ctx: typer.Context, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List template versions: system templates and your own (admins: all).

    Example: brokkr templates list -o yaml
    """
    with session.client(ctx) as brokkr:
        found = brokkr.templates.list()
    output.show(found, columns=columns.TEMPLATE, output=output_format, quiet=quiet)


@app.command("get")
def get_template(
    ctx: typer.Context,
    template: str = TemplateArgument,
    content: bool = typer.Option(False, "--content", help="Print only the template itself."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show a template version.

    Example: brokkr templates get web-service@2 -o yaml
    """
    with session.client(ctx) as brokkr:
        found = template_of(brokkr, template)
    if content:
        typer.echo(found.template_content, nl=False)
        return
    output.show(found, columns=columns.TEMPLATE, output=output_format, quiet=quiet)


@app.command("create")
def create_template(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Template name; an existing name gets a new version."),
    file: str = ContentOption,
    schema: str = SchemaOption,
    description: str | None = typer.Option(None, help="What the template makes."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Create a template (version 1), or the next version of an existing name.

    Admins create system templates that every generator may use; a generator's own are private.

    Example: brokkr templates create --name web-service -f web.yaml.tera --schema web.json
    """
    content, schema_text = _read(file, "-f"), _schema_text(schema)
    with session.client(ctx) as brokkr:
        created = brokkr.templates.create(
            name=name,
            template_content=content,
            parameters_schema=schema_text,
            description=description,
        )
    output.show(created, columns=columns.TEMPLATE, output=output_format, quiet=quiet)


@app.command("update")
def update_template(
    ctx: typer.Context,
    template: str = TemplateArgument,
    file: str = ContentOption,
    schema: str = SchemaOption,
    description: str | None = typer.Option(None, help="New description (default: kept)."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Make a new version of a template; the old version stays usable until deleted.

    Example: brokkr templates update web-service -f web.yaml.tera --schema web.json
    """
    content, schema_text = _read(file, "-f"), _schema_text(schema)
    with session.client(ctx) as brokkr:
        updated = brokkr.templates.update(
            template_of(brokkr, template).id,
            template_content=content,
            parameters_schema=schema_text,
            description=description,
        )
    output.show(updated, columns=columns.TEMPLATE, output=output_format, quiet=quiet)


@app.command("delete")
def delete_template(
    ctx: typer.Context,
    template: str = TemplateArgument,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Delete one template version; other versions and deployed objects stay.

    Example: brokkr templates delete web-service@1
    """
    with session.client(ctx) as brokkr:
        template_id = template_of(brokkr, template).id
        brokkr.templates.delete(template_id)
    output.show_deleted(
        "template", template_id, shown_as=template, output=output_format, quiet=quiet
    )


@app.command("render")
def render_template(
    ctx: typer.Context,
    template: str = TemplateArgument,
    params: list[str] | None = ParamOption,
    params_file: str | None = ParamsFileOption,
    output_format: Format = OutputOption,
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print only the rendered YAML, not that it is valid."
    ),
) -> None:
    """Render a template version on the broker and check the result; nothing is stored.

    Prints the YAML exactly as `brokkr deploy --template` would store it, then (on stderr)
    whether the broker accepts it as a deployment object: exit 0 if so, 1 if not.

    Example: brokkr templates render web-service@2 --param replicas=3 --params-file p.yaml
    """
    parameters = parameters_of(params, params_file)
    with session.client(ctx) as brokkr:
        found = template_of(brokkr, template)
        rendered = brokkr.templates.render(found.id, parameters)
    if output_format is not Format.TABLE:
        output.show(rendered, columns=(), output=output_format)
    else:
        typer.echo(rendered.yaml_content, nl=False)
    problem = rendered.validation_error
    if rendered.valid:
        if not quiet:
            output.note(f"valid: {found.name} version {found.version} renders a deployment object")
        return
    output.error(f"not a valid deployment object: {problem.message if problem else 'no reason'}")
    if problem is not None and isinstance(problem.details, dict):
        for line in session.detail_lines(problem.details):
            output.error_detail(line)
    raise typer.Exit(1)


@label_app.command("list")
def list_labels(
    ctx: typer.Context,
    template: str = TemplateArgument,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List a template version's labels.

    Example: brokkr templates labels list web-service
    """
    with session.client(ctx) as brokkr:
        found = brokkr.templates.list_labels(template_of(brokkr, template).id)
    output.show(found, columns=columns.LABEL, output=output_format, quiet=quiet)


@label_app.command("add")
def add_label(
    ctx: typer.Context,
    template: str = TemplateArgument,
    label: str = typer.Argument(..., help="The label a stack must carry."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Label a template version: only stacks with every such label may use it.

    Example: brokkr templates labels add web-service env:prod
    """
    with session.client(ctx) as brokkr:
        added = brokkr.templates.add_label(template_of(brokkr, template).id, label)
    output.show(added, columns=columns.LABEL, output=output_format, quiet=quiet)


@label_app.command("remove")
def remove_label(
    ctx: typer.Context,
    template: str = TemplateArgument,
    label: str = typer.Argument(..., help="The label to remove."),
) -> None:
    """Remove a label from a template version.

    Example: brokkr templates labels remove web-service env:prod
    """
    with session.client(ctx) as brokkr:
        brokkr.templates.remove_label(template_of(brokkr, template).id, label)
    typer.echo(f"removed label {label}")


@annotation_app.command("list")
def list_annotations(
    ctx: typer.Context,
    template: str = TemplateArgument,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List a template version's annotations.

    Example: brokkr templates annotations list web-service
    """
    with session.client(ctx) as brokkr:
        found = brokkr.templates.list_annotations(template_of(brokkr, template).id)
    output.show(found, columns=columns.ANNOTATION, output=output_format, quiet=quiet)


@annotation_app.command("add")
def add_annotation(
    ctx: typer.Context,
    template: str = TemplateArgument,
    key: str = typer.Argument(..., help="Annotation key."),
    value: str = typer.Argument(..., help="Annotation value."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Annotate a template version: only stacks with every such key=value may use it.

    Example: brokkr templates annotations add web-service region eu-west
    """
    with session.client(ctx) as brokkr:
        added = brokkr.templates.add_annotation(template_of(brokkr, template).id, key, value)
    output.show(added, columns=columns.ANNOTATION, output=output_format, quiet=quiet)


@annotation_app.command("remove")
def remove_annotation(
    ctx: typer.Context,
    template: str = TemplateArgument,
    key: str = typer.Argument(..., help="Annotation key."),
) -> None:
    """Remove an annotation (by key) from a template version.

    Example: brokkr templates annotations remove web-service region
    """
    with session.client(ctx) as brokkr:
        brokkr.templates.remove_annotation(template_of(brokkr, template).id, key)
    typer.echo(f"removed annotation {key}")
