"""`brokkr stacks …`: stacks, their labels, annotations and deployment objects."""

from __future__ import annotations

from uuid import UUID

import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.client import BrokkrClient

app = typer.Typer(help="Stacks: units of desired state owned by a generator.", no_args_is_help=True)
label_app = typer.Typer(
    help="A stack's labels: agents with the same label receive it.", no_args_is_help=True
)
annotation_app = typer.Typer(
    help="A stack's annotations: agents with the same key=value receive it.", no_args_is_help=True
)
app.add_typer(label_app, name="labels")
app.add_typer(annotation_app, name="annotations")


def stack_id_of(brokkr: BrokkrClient, reference: str) -> UUID:
    """A stack given by id or by name."""
    try:
        return UUID(reference)
    except ValueError:
        found = brokkr.stacks.find(reference)
    if found is None:
        output.error(f"no stack named {reference!r}")
        raise typer.Exit(1)
    return found.id


@app.command("list")
def list_stacks(
    ctx: typer.Context,
    generator: UUID | None = typer.Option(None, help="Only this generator's stacks (admins)."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List stacks: all (admins) or your own (generators).

    Example: brokkr stacks list -o yaml
    """
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.list(generator_id=generator)
        output.show(found, columns=columns.STACK, output=output_format, quiet=quiet)


@app.command("get")
def get_stack(
    ctx: typer.Context, stack: str, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """Show a stack (id or name).

    Example: brokkr stacks get web
    """
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.get(stack_id_of(brokkr, stack))
        output.show(found, columns=columns.STACK, output=output_format, quiet=quiet)


@app.command("create")
def create_stack(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Unique among live stacks."),
    description: str | None = typer.Option(None, help="What the stack holds."),
    generator: UUID | None = typer.Option(None, help="Owner (admins only; default: the caller)."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Create a stack.

    Example: brokkr stacks create --name web --description "storefront"
    """
    with session.client(ctx) as brokkr:
        created = brokkr.stacks.create(name=name, description=description, generator_id=generator)
        output.show(created, columns=columns.STACK, output=output_format, quiet=quiet)


@app.command("update")
def update_stack(
    ctx: typer.Context,
    stack: str,
    name: str | None = typer.Option(None, help="New name."),
    description: str | None = typer.Option(None, help="New description."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Rename a stack or change its description.

    Example: brokkr stacks update web --description "storefront, EU"
    """
    with session.client(ctx) as brokkr:
        stack_id = stack_id_of(brokkr, stack)
        if description is None:
            updated = brokkr.stacks.update(stack_id, name=name)
        else:
            updated = brokkr.stacks.update(stack_id, name=name, description=description)
        output.show(updated, columns=columns.STACK, output=output_format, quiet=quiet)


@app.command("delete")
def delete_stack(
    ctx: typer.Context, stack: str, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """Delete a stack: every agent that received it removes what it applied.

    Example: brokkr stacks delete web
    """
    with session.client(ctx) as brokkr:
        stack_id = stack_id_of(brokkr, stack)
        brokkr.stacks.delete(stack_id)
    output.show_deleted("stack", stack_id, shown_as=stack, output=output_format, quiet=quiet)


@app.command("agents")
def stack_agents(
    ctx: typer.Context, stack: str, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """Agents the stack reaches (targets, labels, annotations).

    Example: brokkr stacks agents web
    """
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.agents(stack_id_of(brokkr, stack))
        output.show(found, columns=columns.AGENT, output=output_format, quiet=quiet)


@app.command("objects")
def stack_objects(
    ctx: typer.Context,
    stack: str,
    limit: int = typer.Option(20, min=1, max=1000, help="How many, newest first."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """A stack's deployment objects, newest first.

    Example: brokkr stacks objects web --limit 5
    """
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.list_deployment_objects(stack_id_of(brokkr, stack), limit=limit)
        output.show(found, columns=columns.OBJECT, output=output_format, quiet=quiet)


@label_app.command("list")
def list_labels(
    ctx: typer.Context, stack: str, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List a stack's labels (stack id or name).

    Example: brokkr stacks labels list web
    """
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.list_labels(stack_id_of(brokkr, stack))
        output.show(found, columns=columns.LABEL, output=output_format, quiet=quiet)


@label_app.command("add")
def add_label(
    ctx: typer.Context,
    stack: str,
    label: str,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Label a stack: agents with the same label receive it.

    Example: brokkr stacks labels add web env:prod
    """
    with session.client(ctx) as brokkr:
        added = brokkr.stacks.add_label(stack_id_of(brokkr, stack), label)
        output.show(added, columns=columns.LABEL, output=output_format, quiet=quiet)


@label_app.command("remove")
def remove_label(ctx: typer.Context, stack: str, label: str) -> None:
    """Remove a label from a stack.

    Example: brokkr stacks labels remove web env:prod
    """
    with session.client(ctx) as brokkr:
        brokkr.stacks.remove_label(stack_id_of(brokkr, stack), label)
    typer.echo(f"removed label {label}")


@annotation_app.command("list")
def list_annotations(
    ctx: typer.Context, stack: str, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List a stack's annotations (stack id or name).

    Example: brokkr stacks annotations list web
    """
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.list_annotations(stack_id_of(brokkr, stack))
        output.show(found, columns=columns.ANNOTATION, output=output_format, quiet=quiet)


@annotation_app.command("add")
def add_annotation(
    ctx: typer.Context,
    stack: str,
    key: str,
    value: str,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Annotate a stack: agents with the same key=value receive it.

    Example: brokkr stacks annotations add web region eu-west
    """
    with session.client(ctx) as brokkr:
        added = brokkr.stacks.add_annotation(stack_id_of(brokkr, stack), key, value)
        output.show(added, columns=columns.ANNOTATION, output=output_format, quiet=quiet)


@annotation_app.command("remove")
def remove_annotation(ctx: typer.Context, stack: str, key: str) -> None:
    """Remove an annotation (by key) from a stack.

    Example: brokkr stacks annotations remove web region
    """
    with session.client(ctx) as brokkr:
        brokkr.stacks.remove_annotation(stack_id_of(brokkr, stack), key)
    typer.echo(f"removed annotation {key}")
