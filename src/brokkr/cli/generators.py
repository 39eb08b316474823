"""`brokkr generators …`: the identities (CI pipelines) that own stacks."""

from __future__ import annotations

from uuid import UUID

import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import (
    Format,
    OutputOption,
    QuietOption,
    QuietPakOption,
    QuietWithPakOption,
)

app = typer.Typer(help="Generators: CI pipelines and tools that own stacks.", no_args_is_help=True)


@app.command("list")
def list_generators(
    ctx: typer.Context, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List generators (admins).

    Example: brokkr generators list
    """
    with session.client(ctx) as brokkr:
        output.show(
            brokkr.generators.list(), columns=columns.GENERATOR, output=output_format, quiet=quiet
        )


@app.command("get")
def get_generator(
    ctx: typer.Context,
    generator_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show a generator.

    Example: brokkr generators get 8a1e…
    """
    with session.client(ctx) as brokkr:
        found = brokkr.generators.get(generator_id)
        output.show(found, columns=columns.GENERATOR, output=output_format, quiet=quiet)


@app.command("create")
def create_generator(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Unique among live generators."),
    description: str | None = typer.Option(None, help="What this generator is."),
    output_format: Format = OutputOption,
    quiet: bool = QuietWithPakOption,
) -> None:
    """Create a generator (admins). Prints its PAK once: store it in your CI secrets.

    Example: brokkr generators create --name ci-main --description "main pipeline"
    """
    with session.client(ctx) as brokkr:
        created = brokkr.generators.create(name=name, description=description)
    output.show_with_pak(
        created.generator,
        created.pak,
        response=created,
        columns=columns.GENERATOR,
        output=output_format,
        quiet=quiet,
    )


@app.command("update")
def update_generator(
    ctx: typer.Context,
    generator_id: UUID,
    name: str | None = typer.Option(None, help="New name."),
    description: str | None = typer.Option(None, help="New description."),
    active: bool | None = typer.Option(None, "--active/--inactive", help="Admins only."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Rename, describe, activate or deactivate a generator.

    Example: brokkr generators update 8a1e… --inactive
    """
    with session.client(ctx) as brokkr:
        if description is None:
            updated = brokkr.generators.update(generator_id, name=name, is_active=active)
        else:
            updated = brokkr.generators.update(
                generator_id, name=name, description=description, is_active=active
            )
        output.show(updated, columns=columns.GENERATOR, output=output_format, quiet=quiet)


@app.command("delete")
def delete_generator(
    ctx: typer.Context,
    generator_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Delete a generator and its stacks; its PAK stops working at once.

    Example: brokkr generators delete 8a1e…
    """
    with session.client(ctx) as brokkr:
        brokkr.generators.delete(generator_id)
    output.show_deleted(
        "generator", generator_id, shown_as=str(generator_id), output=output_format, quiet=quiet
    )


@app.command("rotate-pak")
def rotate_generator_pak(
    ctx: typer.Context,
    generator_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietPakOption,
) -> None:
    """Replace a generator's PAK and print the new one.

    Example: brokkr generators rotate-pak 8a1e…
    """
    with session.client(ctx) as brokkr:
        rotated = brokkr.generators.rotate_pak(generator_id)
    output.show_pak(rotated.pak, response=rotated, output=output_format, quiet=quiet)
