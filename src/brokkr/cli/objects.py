"""`brokkr objects …`: deployment objects."""

from __future__ import annotations

import json
from uuid import UUID

import msgspec
import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.client import BrokkrClient, NotFound
from brokkr.common import wire

app = typer.Typer(help="Deployment objects: immutable revisions of a stack.", no_args_is_help=True)


@app.command("get")
def get_object(
    ctx: typer.Context,
    object_id: UUID,
    content: bool = typer.Option(False, "--content", help="Print only the YAML content."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show a deployment object and, if it was rendered from a template, its provenance.

    Example: brokkr objects get 77b2… --content > applied.yaml
    """
    with session.client(ctx) as brokkr:
        found = brokkr.deployment_objects.get(object_id)
        if content:
            typer.echo(found.yaml_content, nl=False)
            return
        if quiet:
            output.show(found, columns=columns.OBJECT, quiet=True)
            return
        provenance = _provenance(brokkr, object_id)
    if output_format is Format.TABLE:
        output.show(found, columns=columns.OBJECT)
        if provenance is not None:
            typer.echo(
                f"rendered from template {provenance.template_id} version "
                f"{provenance.template_version} with parameters "
                f"{json.dumps(provenance.parameters, sort_keys=True)}"
            )
        return
    shown = ShownObject(**msgspec.structs.asdict(found), provenance=provenance)
    output.show(shown, columns=columns.OBJECT, output=output_format)


class ShownObject(wire.DeploymentObject, kw_only=True, frozen=True):
    """What ``-o json|yaml`` prints: the object, plus its template provenance or null."""

    provenance: wire.TemplateProvenance | None = None


def _provenance(brokkr: BrokkrClient, object_id: UUID) -> wire.TemplateProvenance | None:
    try:
        return brokkr.deployment_objects.provenance(object_id)
    except NotFound:
        # The object was just read: a 404 here means it was pushed as YAML, not rendered.
        return None
