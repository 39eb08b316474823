"""`brokkr deploy`: push manifests (or a rendered template) into a stack, and optionally wait
for the clusters (CI)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from uuid import UUID

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from brokkr.cli import columns, deploy_health, output, session, stacks, templates
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.client import BrokkrClient
from brokkr.common import wire

EXIT_FAILED = 1
EXIT_TIMEOUT = 3
# --wait had nobody to wait for: no active agent receives the stack, so nothing was applied.
EXIT_NO_ACTIVE_AGENT = 4
MANIFEST_SUFFIXES = (".yaml", ".yml")


def read_manifests(sources: list[str]) -> str:
    """Files, directories (their *.yaml/*.yml, sorted) and ``-`` (stdin), as one YAML stream."""
    chunks: list[str] = []
    for source in sources:
        if source == "-":
            chunks.append(_checked("<stdin>", sys.stdin.read()))
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file()
            )
            if not files:
                raise typer.BadParameter(f"{path} holds no .yaml or .yml file", param_hint="-f")
            chunks.extend(_checked(str(f), f.read_text(encoding="utf-8")) for f in files)
        elif path.is_file():
            chunks.append(_checked(str(path), path.read_text(encoding="utf-8")))
        else:
            raise typer.BadParameter(f"{path} does not exist", param_hint="-f")
    return "---\n".join(
        chunk if chunk.endswith("\n") else chunk + "\n" for chunk in chunks if chunk.strip()
    )


def _checked(source: str, text: str) -> str:
    """``text`` if it parses as YAML; else a usage error at ``file:line:column`` of that file
    (the broker could only count lines in the joined stream). Composing builds nodes without
    expanding aliases, so a hostile file costs no more than its size."""
    try:
        for _ in yaml.compose_all(text, Loader=yaml.SafeLoader):
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise typer.BadParameter(
            f"{where}: not valid YAML: {exc.problem or exc.context}", param_hint="-f"
        ) from exc
    return text


def deploy(
    ctx: typer.Context,
    stack: str = typer.Argument(..., help="Stack id or name."),
    files: list[str] | None = typer.Option(
        None, "--file", "-f", help="Manifest file, directory of *.yaml, or - for stdin. Repeatable."
    ),
    template: str | None = typer.Option(
        None,
        "--template",
        "-t",
        help="Instead of -f: render this template (id or NAME[@VERSION], default newest).",
    ),
    params: list[str] | None = templates.ParamOption,
    params_file: str | None = templates.ParamsFileOption,
    wait: bool = typer.Option(False, "--wait", help="Wait until every agent reached reports."),
    healthy: bool = typer.Option(
        False,
        "--healthy",
        help="With --wait: then wait until those agents report the new object healthy.",
    ),
    timeout: float = typer.Option(600.0, min=1, help="Seconds to wait with --wait (in all)."),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between polls with --wait."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Create a deployment object in STACK from manifests or from a template.

    With --template the broker renders the template version with the parameters (--param,
    --params-file), checks them against its schema and stores the result with its provenance.

    With --wait, follow the agents' events until every active agent the stack reaches has
    reported: exit 0 if all report SUCCESS, 1 if any reports FAILURE, 3 on timeout, 4 at once
    if no active agent receives the stack (nothing was deployed).

    With --wait --healthy, after the SUCCESS events keep reading the object's health until
    each of those agents has a fresh report of it: exit 0 when all are healthy, 1 as soon as
    one is failing (its conditions and failing resources are printed), 3 on timeout (naming
    the agents not healthy yet). --timeout covers both waits.

    Example: brokkr deploy web -f k8s/ --wait --healthy --timeout 300
    """
    if (files is None) == (template is None):
        raise typer.BadParameter("give either -f/--file or --template", param_hint="-f")
    if healthy and not wait:
        raise typer.BadParameter("--healthy needs --wait", param_hint="--healthy")
    if template is None and (params or params_file):
        raise typer.BadParameter("parameters need --template", param_hint="--param")
    parameters = templates.parameters_of(params, params_file)
    content = read_manifests(files or [])
    if template is None and not content.strip():
        output.error("the manifests are empty")
        raise typer.Exit(2)
    with session.client(ctx) as brokkr:
        stack_id = stacks.stack_id_of(brokkr, stack)
        if template is None:
            created = brokkr.stacks.deploy(stack_id, content)
        else:
            template_id = templates.template_of(brokkr, template).id
            created = brokkr.templates.instantiate(stack_id, template_id, parameters)
        output.show(created, columns=columns.OBJECT, output=output_format, quiet=quiet)
        if wait:
            deadline = time.monotonic() + timeout
            raise typer.Exit(
                _wait(
                    brokkr,
                    stack_id,
                    created.id,
                    deadline=deadline,
                    interval=interval,
                    healthy=healthy,
                )
            )


def _wait(
    brokkr: BrokkrClient,
    stack_id: UUID,
    object_id: UUID,
    *,
    deadline: float,
    interval: float,
    healthy: bool,
) -> int:
    reached = brokkr.stacks.agents(stack_id)
    expected = {agent.id: agent for agent in reached if agent.status == "ACTIVE"}
    idle = [agent for agent in reached if agent.status != "ACTIVE"]
    if idle:
        output.note(
            f"not waiting for {len(idle)} inactive agent(s): " + ", ".join(a.name for a in idle)
        )
    if not expected:
        output.error("no active agent receives this stack: nothing was deployed")
        return EXIT_NO_ACTIVE_AGENT
    console = Console(stderr=True)
    latest: dict[UUID, wire.AgentEvent] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("waiting for agents", total=len(expected))
        while True:
            for event in reversed(
                brokkr.agent_events.iterate(deployment_object_id=object_id, page=1000)
            ):
                if event.agent_id in expected:
                    latest[event.agent_id] = event
            progress.update(task, completed=len(latest))
            if len(latest) == len(expected) or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    _summary(console, expected, latest)
    if len(latest) < len(expected):
        output.error(f"timed out: {len(expected) - len(latest)} agent(s) have not reported")
        return EXIT_TIMEOUT
    failed = [e for e in latest.values() if e.status != "SUCCESS"]
    if failed:
        output.error(f"{len(failed)} agent(s) reported FAILURE")
        return EXIT_FAILED
    if healthy:
        return deploy_health.wait_healthy(
            brokkr, object_id, expected, deadline=deadline, interval=interval
        )
    return 0


def _summary(
    console: Console, expected: dict[UUID, wire.Agent], latest: dict[UUID, wire.AgentEvent]
) -> None:
    table = Table("agent", "cluster", "status", "message", header_style="bold")
    for agent_id, agent in expected.items():
        event = latest.get(agent_id)
        status = event.status if event else "PENDING"
        style = {"SUCCESS": "green", "FAILURE": "red"}.get(status, "yellow")
        table.add_row(
            agent.name,
            agent.cluster_name,
            f"[{style}]{status}[/]",
            (event.message or "") if event else "",
        )
    console.print(table)
