"""`brokkr agents …`: register agents, activate them, label them, target stacks at them."""

from __future__ import annotations

from uuid import UUID

import typer

from brokkr.cli import columns, output, session, stacks
from brokkr.cli.output import (
    Format,
    OutputOption,
    QuietOption,
    QuietPakOption,
    QuietWithPakOption,
)

app = typer.Typer(help="Agents: the clusters that pull and apply stacks.", no_args_is_help=True)
label_app = typer.Typer(help="An agent's labels (admins).", no_args_is_help=True)
annotation_app = typer.Typer(help="An agent's annotations (admins).", no_args_is_help=True)
target_app = typer.Typer(help="Stacks targeted explicitly at an agent.", no_args_is_help=True)
app.add_typer(label_app, name="labels")
app.add_typer(annotation_app, name="annotations")
app.add_typer(target_app, name="targets")


@app.command("list")
def list_agents(
    ctx: typer.Context, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List agents (admins).

    Example: brokkr agents list -o json
    """
    with session.client(ctx) as brokkr:
        output.show(brokkr.agents.list(), columns=columns.AGENT, output=output_format, quiet=quiet)


@app.command("get")
def get_agent(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show one agent.

    Example: brokkr agents get 3f0c…
    """
    with session.client(ctx) as brokkr:
        output.show(
            brokkr.agents.get(agent_id), columns=columns.AGENT, output=output_format, quiet=quiet
        )


@app.command("search")
def search_agent(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Agent name."),
    cluster: str = typer.Option(..., help="Cluster name."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Find an agent by name and cluster.

    Example: brokkr agents search --name edge-1 --cluster prod-eu -q
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agents.search(name=name, cluster_name=cluster)
        output.show(found, columns=columns.AGENT, output=output_format, quiet=quiet)


@app.command("create")
def create_agent(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Agent name, unique within its cluster."),
    cluster: str = typer.Option(..., help="Cluster name."),
    output_format: Format = OutputOption,
    quiet: bool = QuietWithPakOption,
) -> None:
    """Register an agent (admins). Prints its PAK once: give it to the agent.

    Example: brokkr agents create --name edge-1 --cluster prod-eu -q
    """
    with session.client(ctx) as brokkr:
        created = brokkr.agents.create(name=name, cluster_name=cluster)
    output.show_with_pak(
        created.agent,
        created.initial_pak,
        response=created,
        columns=columns.AGENT,
        output=output_format,
        quiet=quiet,
    )


@app.command("update")
def update_agent(
    ctx: typer.Context,
    agent_id: UUID,
    name: str | None = typer.Option(None, help="New name."),
    cluster: str | None = typer.Option(None, help="New cluster name."),
    status: str | None = typer.Option(None, help="ACTIVE or INACTIVE."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Change an agent's name, cluster or status (admins).

    Example: brokkr agents update 3f0c… --status ACTIVE
    """
    match status:
        case None | "ACTIVE" | "INACTIVE":
            pass  # narrowed to wire.AgentStatus | None
        case _:
            output.error("--status must be ACTIVE or INACTIVE")
            raise typer.Exit(2)
    with session.client(ctx) as brokkr:
        updated = brokkr.agents.update(agent_id, name=name, cluster_name=cluster, status=status)
        output.show(updated, columns=columns.AGENT, output=output_format, quiet=quiet)


@app.command("activate")
def activate_agent(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Let an agent apply what it is given (status ACTIVE; admins).

    Example: brokkr agents activate 3f0c…
    """
    with session.client(ctx) as brokkr:
        activated = brokkr.agents.activate(agent_id)
        output.show(activated, columns=columns.AGENT, output=output_format, quiet=quiet)


@app.command("deactivate")
def deactivate_agent(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Stop an agent from applying anything (status INACTIVE; admins).

    Example: brokkr agents deactivate 3f0c…
    """
    with session.client(ctx) as brokkr:
        deactivated = brokkr.agents.deactivate(agent_id)
        output.show(deactivated, columns=columns.AGENT, output=output_format, quiet=quiet)


@app.command("delete")
def delete_agent(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Delete an agent; its PAK stops working at once (admins).

    Example: brokkr agents delete 3f0c…
    """
    with session.client(ctx) as brokkr:
        brokkr.agents.delete(agent_id)
    output.show_deleted(
        "agent", agent_id, shown_as=str(agent_id), output=output_format, quiet=quiet
    )


@app.command("rotate-pak")
def rotate_agent_pak(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietPakOption,
) -> None:
    """Replace an agent's PAK and print the new one; the old one stops working at once.

    Example: brokkr agents rotate-pak 3f0c…
    """
    with session.client(ctx) as brokkr:
        rotated = brokkr.agents.rotate_pak(agent_id)
    output.show_pak(rotated.pak, response=rotated, output=output_format, quiet=quiet)


@app.command("stacks")
def agent_stacks(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Stacks an agent receives (targets, shared labels, shared annotations).

    Example: brokkr agents stacks 3f0c…
    """
    with session.client(ctx) as brokkr:
        output.show(
            brokkr.agents.stacks(agent_id), columns=columns.STACK, output=output_format, quiet=quiet
        )


@app.command("target-state")
def agent_target_state(
    ctx: typer.Context,
    agent_id: UUID,
    full: bool = typer.Option(False, "--full", help="Include objects already applied."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """What an agent's cluster should run now.

    Example: brokkr agents target-state 3f0c… --full -o yaml
    """
    with session.client(ctx) as brokkr:
        state = brokkr.agents.target_state(agent_id, full=full)
    output.show(state.objects or [], columns=columns.OBJECT, output=output_format, quiet=quiet)


@app.command("events")
def agent_events(
    ctx: typer.Context,
    agent_id: UUID,
    limit: int = typer.Option(100, min=1, max=1000, help="How many, newest first."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """An agent's recent events.

    Example: brokkr agents events 3f0c… --limit 20
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agents.events(agent_id, limit=limit)
        output.show(found, columns=columns.EVENT, output=output_format, quiet=quiet)


@app.command("connections")
def agent_connections(
    ctx: typer.Context, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """Agents connected to this broker's channel, and its live-stream subscribers (admins).

    With -q, the connected agents' ids, one per line.

    Example: brokkr agents connections
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agents.connections()
    if quiet:
        for connection in found.connections:
            typer.echo(str(connection.agent_id))
        return
    if output_format is not Format.TABLE:
        output.show(found, columns=(), output=output_format)
        return
    output.show(found.connections, columns=columns.WS_CONNECTION)
    typer.echo(
        f"{found.connected_agents} agents connected, {found.live_subscribers} live subscribers"
    )


@label_app.command("list")
def list_labels(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List an agent's labels.

    Example: brokkr agents labels list 3f0c…
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agents.list_labels(agent_id)
        output.show(found, columns=columns.LABEL, output=output_format, quiet=quiet)


@label_app.command("add")
def add_label(
    ctx: typer.Context,
    agent_id: UUID,
    label: str,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Stacks with the same label reach this agent.

    Example: brokkr agents labels add 3f0c… env:prod
    """
    with session.client(ctx) as brokkr:
        added = brokkr.agents.add_label(agent_id, label)
        output.show(added, columns=columns.LABEL, output=output_format, quiet=quiet)


@label_app.command("remove")
def remove_label(ctx: typer.Context, agent_id: UUID, label: str) -> None:
    """Remove a label from an agent.

    Example: brokkr agents labels remove 3f0c… env:prod
    """
    with session.client(ctx) as brokkr:
        brokkr.agents.remove_label(agent_id, label)
    typer.echo(f"removed label {label}")


@annotation_app.command("list")
def list_annotations(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List an agent's annotations.

    Example: brokkr agents annotations list 3f0c…
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agents.list_annotations(agent_id)
        output.show(found, columns=columns.ANNOTATION, output=output_format, quiet=quiet)


@annotation_app.command("add")
def add_annotation(
    ctx: typer.Context,
    agent_id: UUID,
    key: str,
    value: str,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Stacks with the same key=value reach this agent.

    Example: brokkr agents annotations add 3f0c… region eu-west
    """
    with session.client(ctx) as brokkr:
        added = brokkr.agents.add_annotation(agent_id, key, value)
        output.show(added, columns=columns.ANNOTATION, output=output_format, quiet=quiet)


@annotation_app.command("remove")
def remove_annotation(ctx: typer.Context, agent_id: UUID, key: str) -> None:
    """Remove an annotation (by key) from an agent.

    Example: brokkr agents annotations remove 3f0c… region
    """
    with session.client(ctx) as brokkr:
        brokkr.agents.remove_annotation(agent_id, key)
    typer.echo(f"removed annotation {key}")


@target_app.command("list")
def list_targets(
    ctx: typer.Context,
    agent_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List the stacks targeted explicitly at an agent.

    Example: brokkr agents targets list 3f0c…
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agents.list_targets(agent_id)
        output.show(found, columns=columns.TARGET, output=output_format, quiet=quiet)


@target_app.command("add")
def add_target(
    ctx: typer.Context,
    agent_id: UUID,
    stack: str,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Target a stack (id or name) at the agent.

    Example: brokkr agents targets add 3f0c… web
    """
    with session.client(ctx) as brokkr:
        added = brokkr.agents.add_target(agent_id, stacks.stack_id_of(brokkr, stack))
        output.show(added, columns=columns.TARGET, output=output_format, quiet=quiet)


@target_app.command("remove")
def remove_target(ctx: typer.Context, agent_id: UUID, stack: str) -> None:
    """Stop targeting a stack (id or name) at the agent.

    Example: brokkr agents targets remove 3f0c… web
    """
    with session.client(ctx) as brokkr:
        brokkr.agents.remove_target(agent_id, stacks.stack_id_of(brokkr, stack))
    typer.echo(f"removed target {stack}")
