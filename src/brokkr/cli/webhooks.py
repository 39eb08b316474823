"""`brokkr webhooks …`: subscriptions that POST the broker's events to outside systems.

Secrets (the URL, the auth header, the signing secret) are write-only: the broker never returns
them and no command prints them. ``--secret-from-env`` and ``--auth-header-from-env`` keep
them out of shell history and of the process list.
"""

from __future__ import annotations

import json
import os
from uuid import UUID

import typer
import yaml

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.common import wire

app = typer.Typer(
    help="Webhooks: POST the broker's events (stacks, deployments, agents, work orders) to a URL "
    "(admins).",
    no_args_is_help=True,
)

EventOption = typer.Option(
    None,
    "--event",
    help="An event type: an exact name, a prefix like stack.* or * for all (see "
    "`brokkr webhooks event-types`). Repeatable.",
)
AuthHeaderOption = typer.Option(
    None, "--auth-header", help="The Authorization header value to send, e.g. 'Bearer xyz'."
)
AuthHeaderFromEnvOption = typer.Option(
    None,
    "--auth-header-from-env",
    metavar="VAR",
    help="Read the Authorization header value from this environment variable.",
)
SecretOption = typer.Option(
    None,
    "--secret",
    help="Sign every delivery with this secret, 16-512 characters "
    "(X-Brokkr-Signature: sha256=<HMAC>).",
)
SecretFromEnvOption = typer.Option(
    None, "--secret-from-env", metavar="VAR", help="Read the signing secret from this variable."
)
FilterAgentOption = typer.Option(
    None, "--filter-agent", help="Only events concerning this agent (id)."
)
FilterStackOption = typer.Option(
    None, "--filter-stack", help="Only events concerning this stack (id)."
)
FilterLabelOption = typer.Option(
    None,
    "--filter-label",
    help="Only events whose agent or stack has this key=value annotation. Repeatable.",
)
TargetLabelOption = typer.Option(
    None,
    "--target-label",
    help="Deliver from an agent carrying every such label (receivers only a cluster reaches) "
    "instead of the broker. Repeatable.",
)
MaxRetriesOption = typer.Option(
    None, "--max-retries", min=0, help="Retries after a failed delivery (broker default)."
)
TimeoutOption = typer.Option(
    None, "--timeout", min=1, help="Seconds one delivery may take (broker default)."
)


def secret_of(value: str | None, variable: str | None, *, option: str) -> str | None:
    """The value given directly or read from ``variable``; never both."""
    if value is not None and variable is not None:
        raise typer.BadParameter(f"give {option} or {option}-from-env, not both", param_hint=option)
    if variable is None:
        return value
    found = os.environ.get(variable)
    if not found:
        raise typer.BadParameter(
            f"environment variable {variable} is not set or empty", param_hint=f"{option}-from-env"
        )
    return found


def labels_of(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--filter-label")
        labels[key] = value
    return labels


def filters_of(
    agent: UUID | None, stack: UUID | None, labels: list[str] | None
) -> wire.WebhookFilters | None:
    """The filters given, or None when no filter option was."""
    by_labels = labels_of(labels)
    if agent is None and stack is None and by_labels is None:
        return None
    return wire.WebhookFilters(agent_id=agent, stack_id=stack, labels=by_labels)


@app.command("create")
def create_webhook(
    ctx: typer.Context,
    name: str = typer.Option(..., help="What the subscription is for."),
    url: str = typer.Option(..., help="The receiver: an http:// or https:// URL."),
    events: list[str] | None = EventOption,
    auth_header: str | None = AuthHeaderOption,
    auth_header_from_env: str | None = AuthHeaderFromEnvOption,
    secret: str | None = SecretOption,
    secret_from_env: str | None = SecretFromEnvOption,
    filter_agent: UUID | None = FilterAgentOption,
    filter_stack: UUID | None = FilterStackOption,
    filter_labels: list[str] | None = FilterLabelOption,
    target_labels: list[str] | None = TargetLabelOption,
    max_retries: int | None = MaxRetriesOption,
    timeout: int | None = TimeoutOption,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Subscribe a URL to events: each matching event is POSTed to it as a JSON envelope,
    retried with backoff until it answers 2xx. URL, auth header and secret are stored
    encrypted and never shown again.

    Example: brokkr webhooks create --name chat --url https://hooks.example/brokkr \\
    --event 'deployment.*' --event stack.deleted --secret-from-env HOOK_SECRET
    """
    if not events:
        raise typer.BadParameter("give at least one --event", param_hint="--event")
    body_secret = secret_of(secret, secret_from_env, option="--secret")
    body_auth = secret_of(auth_header, auth_header_from_env, option="--auth-header")
    filters = filters_of(filter_agent, filter_stack, filter_labels)
    with session.client(ctx) as brokkr:
        created = brokkr.webhooks.create(
            name=name,
            url=url,
            event_types=events,
            auth_header=body_auth,
            secret=body_secret,
            filters=filters,
            target_labels=target_labels or None,
            max_retries=max_retries,
            timeout_seconds=timeout,
        )
    output.show(created, columns=columns.WEBHOOK, output=output_format, quiet=quiet)


@app.command("list")
def list_webhooks(
    ctx: typer.Context, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List every subscription, enabled or not, newest first.

    Example: brokkr webhooks list -o json
    """
    with session.client(ctx) as brokkr:
        found = brokkr.webhooks.list()
    output.show(found, columns=columns.WEBHOOK, output=output_format, quiet=quiet)


@app.command("get")
def get_webhook(
    ctx: typer.Context,
    webhook_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show one subscription (whether it has an auth header and a secret, not their values).

    Example: brokkr webhooks get 3f2a… -o yaml
    """
    with session.client(ctx) as brokkr:
        found = brokkr.webhooks.get(webhook_id)
    output.show(found, columns=columns.WEBHOOK, output=output_format, quiet=quiet)


@app.command("update")
def update_webhook(
    ctx: typer.Context,
    webhook_id: UUID,
    name: str | None = typer.Option(None, help="A new name."),
    url: str | None = typer.Option(None, help="A new receiver URL."),
    events: list[str] | None = EventOption,
    auth_header: str | None = AuthHeaderOption,
    auth_header_from_env: str | None = AuthHeaderFromEnvOption,
    clear_auth_header: bool = typer.Option(
        False, "--clear-auth-header", help="Send no Authorization header any more."
    ),
    secret: str | None = SecretOption,
    secret_from_env: str | None = SecretFromEnvOption,
    clear_secret: bool = typer.Option(
        False, "--clear-secret", help="Stop signing deliveries (no X-Brokkr-Signature)."
    ),
    filter_agent: UUID | None = FilterAgentOption,
    filter_stack: UUID | None = FilterStackOption,
    filter_labels: list[str] | None = FilterLabelOption,
    clear_filters: bool = typer.Option(
        False, "--clear-filters", help="Remove every filter: all matching events are sent."
    ),
    target_labels: list[str] | None = TargetLabelOption,
    clear_target_labels: bool = typer.Option(
        False, "--clear-target-labels", help="Deliver from the broker again, not from agents."
    ),
    enabled: bool | None = typer.Option(
        None, "--enable/--disable", help="Resume or pause new deliveries."
    ),
    max_retries: int | None = MaxRetriesOption,
    timeout: int | None = TimeoutOption,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Change a subscription: only what is given changes. --event, --target-label and the
    --filter-* options replace the whole list or filter set; --clear-* remove one.

    Example: brokkr webhooks update 3f2a… --disable --clear-secret
    """
    filters = filters_of(filter_agent, filter_stack, filter_labels)
    for given, clear, option in (
        (
            auth_header is not None or auth_header_from_env is not None,
            clear_auth_header,
            "auth-header",
        ),
        (secret is not None or secret_from_env is not None, clear_secret, "secret"),
        (filters is not None, clear_filters, "filters"),
        (bool(target_labels), clear_target_labels, "target-labels"),
    ):
        if given and clear:
            raise typer.BadParameter(f"--clear-{option} and a new value given at once")
    with session.client(ctx) as brokkr:
        updated = brokkr.webhooks.update(
            webhook_id,
            name=name,
            url=url,
            event_types=events or None,
            auth_header=secret_of(auth_header, auth_header_from_env, option="--auth-header"),
            secret=secret_of(secret, secret_from_env, option="--secret"),
            filters=filters,
            target_labels=target_labels or None,
            enabled=enabled,
            max_retries=max_retries,
            timeout_seconds=timeout,
            clear_auth_header=clear_auth_header,
            clear_secret=clear_secret,
            clear_filters=clear_filters,
            clear_target_labels=clear_target_labels,
        )
    output.show(updated, columns=columns.WEBHOOK, output=output_format, quiet=quiet)


@app.command("delete")
def delete_webhook(
    ctx: typer.Context,
    webhook_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Delete a subscription and every delivery of it (queued ones are not sent).

    Example: brokkr webhooks delete 3f2a…
    """
    with session.client(ctx) as brokkr:
        brokkr.webhooks.delete(webhook_id)
    output.show_deleted(
        "webhook", webhook_id, shown_as=str(webhook_id), output=output_format, quiet=quiet
    )


@app.command("event-types")
def event_types(
    ctx: typer.Context, output_format: Format = OutputOption, quiet: bool = QuietOption
) -> None:
    """List the event types a subscription may name, one per line.

    Example: brokkr webhooks event-types
    """
    with session.client(ctx) as brokkr:
        found = brokkr.webhooks.event_types()
    if output_format is Format.JSON and not quiet:
        typer.echo(json.dumps(found, indent=2))
    elif output_format is Format.YAML and not quiet:
        typer.echo(yaml.safe_dump(found).rstrip())
    else:
        typer.echo("\n".join(found))


@app.command("test")
def test_webhook(
    ctx: typer.Context,
    webhook_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """POST a webhook.test event to the subscription's URL now (even when disabled) and show
    what the receiver answered; exit 1 when it did not answer 2xx. Nothing is recorded.

    Example: brokkr webhooks test 3f2a…
    """
    with session.client(ctx) as brokkr:
        result = brokkr.webhooks.test(webhook_id)
    if quiet:
        typer.echo(str(webhook_id))
        return
    output.show(result, columns=columns.WEBHOOK_TEST, output=output_format)


@app.command("deliveries")
def list_deliveries(
    ctx: typer.Context,
    webhook_id: UUID,
    status: str | None = typer.Option(
        None, help="Only deliveries in this state: pending, acquired, success, failed or dead."
    ),
    limit: int = typer.Option(50, min=1, help="How many, newest first."),
    offset: int = typer.Option(0, min=0, help="How many of the newest to skip."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """A subscription's deliveries, newest first: state, attempts, next retry and last error
    (-o json adds the envelope sent).

    Example: brokkr webhooks deliveries 3f2a… --status dead --limit 20
    """
    with session.client(ctx) as brokkr:
        found = brokkr.webhooks.deliveries(webhook_id, status=status, limit=limit, offset=offset)
    output.show(found, columns=columns.WEBHOOK_DELIVERY, output=output_format, quiet=quiet)
