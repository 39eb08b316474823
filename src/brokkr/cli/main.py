"""The one `brokkr` command: broker entry points and one group per API resource."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import typer

from brokkr.cli import (
    agents,
    audit,
    deploy,
    diagnose,
    events,
    generators,
    health,
    objects,
    output,
    profiles,
    session,
    stacks,
    telemetry,
    templates,
    webhooks,
    work_orders,
)
from brokkr.client import BrokkrClient
from brokkr.common.settings import SettingsError

if TYPE_CHECKING:
    from brokkr.broker.settings import Settings  # imported lazily: `brokkr stacks` stays light

app = typer.Typer(
    name="brokkr",
    help=(
        "Brokkr: distribute Kubernetes objects across many clusters.\n\n"
        "Connect with `brokkr login --url URL --pak PAK` (or BROKKR_URL / BROKKR_PAK), then e.g. "
        "`brokkr stacks list` or `brokkr deploy web -f k8s/ --wait`.\n\n"
        "--profile, --url, --pak and --ca-bundle go before the command "
        "(`brokkr --profile prod stacks list`); BROKKR_PROFILE chooses the profile when "
        "--profile is not given."
    ),
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema commands (broker host).", no_args_is_help=True)
admin_app = typer.Typer(help="Admin identity commands (broker host).", no_args_is_help=True)
agent_app = typer.Typer(help="The Brokkr agent (runs in a cluster).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(agent_app, name="agent")
app.add_typer(agents.app, name="agents")
app.add_typer(generators.app, name="generators")
app.add_typer(stacks.app, name="stacks")
app.add_typer(templates.app, name="templates")
app.add_typer(objects.app, name="objects")
app.add_typer(events.app, name="events")
app.add_typer(audit.app, name="audit")
app.add_typer(work_orders.app, name="work-orders")
app.add_typer(webhooks.app, name="webhooks")
app.command("deploy")(deploy.deploy)
app.command("health")(health.health)
app.command("diagnose")(diagnose.diagnose)
stacks.app.command("events")(telemetry.stack_events)
stacks.app.command("logs")(telemetry.stack_logs)

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help=(
        "TOML configuration file (overrides BROKKR_CONFIG_FILE). "
        "Environment BROKKR__SECTION__KEY wins over it."
    ),
    exists=True,
    dir_okay=False,
)


@app.callback()
def connection(
    ctx: typer.Context,
    profile: str | None = typer.Option(
        None,
        "--profile",
        "-p",
        help="Profile saved by `brokkr login` (default: BROKKR_PROFILE, else 'default').",
    ),
    url: str | None = typer.Option(
        None, "--url", help="Broker URL (overrides profile and BROKKR_URL)."
    ),
    pak: str | None = typer.Option(None, "--pak", help="PAK (overrides profile and BROKKR_PAK)."),
    ca_bundle: Path | None = typer.Option(
        None,
        "--ca-bundle",
        exists=True,
        dir_okay=False,
        help="CA bundle (PEM) to trust for the broker's TLS certificate, e.g. a private CA "
        "(overrides the profile's and BROKKR_CA_BUNDLE; default: the system's CAs).",
    ),
    timeout: float = typer.Option(30.0, "--timeout-seconds", min=1, help="Per-request timeout."),
) -> None:
    """Brokkr: distribute Kubernetes objects across many clusters."""
    ctx.obj = session.Options(
        profile=profile,
        url=url,
        pak=pak,
        ca_bundle=str(ca_bundle.resolve()) if ca_bundle else None,
        timeout=timeout,
    )


@app.command()
def login(
    ctx: typer.Context,
    url: str = typer.Option(..., "--url", help="Broker URL, e.g. https://brokkr.example.com"),
    pak: str = typer.Option(..., "--pak", help="Your PAK (admin, generator or agent)."),
    profile: str = typer.Option(
        profiles.DEFAULT_PROFILE, "--profile", "-p", help="Profile name to save."
    ),
    ca_cert: Path | None = typer.Option(
        None,
        "--ca-cert",
        "--ca-bundle",
        exists=True,
        dir_okay=False,
        help="CA bundle (PEM) for the broker's certificate, saved in the profile "
        "(default: the global --ca-bundle or BROKKR_CA_BUNDLE, else the system's CAs).",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Skip TLS verification (testing only)."
    ),
) -> None:
    """Check a URL and PAK against the broker and save them as a profile (file mode 0600).

    Example: brokkr login --url https://brokkr.example.com --pak "$BROKKR_PAK" --profile prod
    """
    given = str(ca_cert.resolve()) if ca_cert else session.options(ctx).ca_bundle
    given = given or os.environ.get(profiles.CA_BUNDLE_ENV)
    given = str(Path(given).resolve()) if given else None
    saved = profiles.Profile(url=url, pak=pak, ca_cert=given, insecure=insecure)
    verify: bool | str = False if insecure else (saved.ca_cert or True)
    with session.guarded(), BrokkrClient(url, pak, verify=verify) as brokkr:
        identity = brokkr.auth.whoami()
    path = profiles.config_path(os.environ)
    profiles.save(path, profile, saved)
    role = "admin" if identity.admin else ("agent" if identity.agent else "generator")
    who = "" if identity.admin else f" {identity.agent or identity.generator}"
    typer.echo(f"logged in to {url} as {role}{who}; profile {profile!r} saved in {path}")


@app.command()
def whoami(
    ctx: typer.Context,
    output_format: output.Format = output.OutputOption,
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print only the agent's or generator's id, or `admin`."
    ),
) -> None:
    """Show the role of the PAK in use.

    Example: brokkr --profile prod whoami -o json
    """
    with session.client(ctx) as brokkr:
        identity = brokkr.auth.whoami()
    if quiet:
        typer.echo("admin" if identity.admin else str(identity.agent or identity.generator))
        return
    output.show(identity, columns=("admin", "agent", "generator"), output=output_format)


def _settings(config: Path | None) -> Settings:
    from brokkr.broker import settings

    try:
        return settings.load(config_file=config)
    except SettingsError as exc:
        typer.secho(f"configuration error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default broker.host, 0.0.0.0)."),
    port: int | None = typer.Option(None, help="Port to listen on (default broker.port, 3000)."),
    tls_cert: Path | None = typer.Option(
        None,
        "--tls-cert",
        dir_okay=False,
        help="PEM certificate (chain) to serve HTTPS and WSS with; needs --tls-key "
        "(default broker.tls_cert_file).",
    ),
    tls_key: Path | None = typer.Option(
        None,
        "--tls-key",
        dir_okay=False,
        help="PEM private key of --tls-cert (default broker.tls_key_file).",
    ),
    workers: int | None = typer.Option(
        None,
        min=0,
        help="Worker processes sharing the port, each a whole broker (default broker.workers; "
        "0: the usable cores on PostgreSQL, 1 on SQLite, which allows no more).",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Start the broker.

    With no configuration it stores everything in SQLite under ./.brokkr and, on first start,
    prints a generated admin PAK once (also saved to ./.brokkr/admin.pak, mode 0600).
    Without a TLS-terminating ingress in front, serve HTTPS with `--tls-cert tls/broker.crt
    --tls-key tls/broker.key`; clients then trust the CA that signed it (brokkr --ca-bundle,
    BROKKR__AGENT__CA_BUNDLE). On PostgreSQL it runs one worker process per usable core
    (--workers), supervised by this process: a worker that dies is replaced.

    Example: BROKKR__DATABASE__URL=postgresql://brokkr@db/brokkr brokkr serve --port 3000
    """
    from brokkr.broker import main

    settings = _settings(config)
    tls = main.TlsFiles.of(settings)
    if tls_cert or tls_key:
        # A flag overrides its own setting; the pair must still be complete.
        cert = str(tls_cert) if tls_cert else (tls.cert if tls else "")
        key = str(tls_key) if tls_key else (tls.key if tls else "")
        if not (cert and key):
            typer.secho(
                "configuration error: give both --tls-cert and --tls-key, or neither",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(code=2)
        tls = main.TlsFiles(cert=cert, key=key)
    with _startup_errors():
        status = main.serve(
            settings, host=host, port=port, config_file=config, tls=tls, workers=workers
        )
    if status != 0:
        raise typer.Exit(code=status)


@db_app.command("upgrade")
def db_upgrade(config: Path | None = ConfigOption) -> None:
    """Apply pending schema migrations (the broker also does this at start).

    Example: BROKKR__DATABASE__URL=postgresql://brokkr@db/brokkr brokkr db upgrade
    """
    from brokkr.broker import main

    settings = _settings(config)
    with _startup_errors():
        revision = main.upgrade_database(settings)
    typer.echo(f"{main.describe_database(settings)}: schema at revision {revision}")


@admin_app.command("rotate-pak")
def admin_rotate_pak(
    config: Path | None = ConfigOption,
    output_format: output.Format = output.OutputOption,
    quiet: bool = output.QuietPakOption,
) -> None:
    """Replace the admin PAK and print the new one. The old key stops working on every broker.

    Run it with the broker's own configuration (the same BROKKR__DATABASE__URL or data dir):
    a database without the broker's schema is refused. Which database was used goes to stderr.

    Example: BROKKR__DATABASE__URL=postgresql://brokkr@db/brokkr brokkr admin rotate-pak
    """
    from brokkr.broker import main

    settings = _settings(config)
    with _startup_errors():
        pak = main.rotate_admin_pak(settings)
    output.note(f"rotated the admin PAK in the {main.describe_database(settings)}")
    output.show_pak(pak, response=RotatedAdminPak(pak=pak), output=output_format, quiet=quiet)


class RotatedAdminPak(msgspec.Struct, kw_only=True, frozen=True):
    pak: str


@admin_app.command("new-pak")
def admin_new_pak(
    output_format: output.Format = output.OutputOption,
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print the PAK, then its SHA-256, one per line."
    ),
) -> None:
    """Make a new admin PAK and its SHA-256, touching no database.

    Seed a new broker with the hash (BROKKR__BROKER__ADMIN_PAK_HASH) and keep the PAK in a
    secret manager: the plaintext never reaches the broker's host. It is used on the
    database's first start only; an existing broker's admin PAK changes with rotate-pak.

    Example: brokkr admin new-pak -q > admin-pak.txt
    """
    from brokkr.broker import main

    pak, pak_hash = main.new_admin_pak()
    if quiet:
        typer.echo(pak)
        typer.echo(pak_hash)
    elif output_format is output.Format.TABLE:
        typer.echo(f"PAK (shown once): {pak}")
        typer.echo(f"SHA-256 (broker.admin_pak_hash): {pak_hash}")
    else:
        output.show(NewAdminPak(pak=pak, pak_hash=pak_hash), columns=(), output=output_format)


class NewAdminPak(msgspec.Struct, kw_only=True, frozen=True):
    pak: str
    pak_hash: str


@contextmanager
def _startup_errors() -> Iterator[None]:
    from brokkr.broker import main

    try:
        yield
    except main.StartupError as exc:
        output.error(str(exc))
        raise typer.Exit(code=1) from exc


@agent_app.command("run")
def agent_run() -> None:
    """Run the agent: poll the broker and make this cluster match its target state.

    Configured only by environment variables (* = required); stops cleanly on SIGTERM.

    \b
    BROKKR__AGENT__PAK *                   its PAK (from `brokkr agents create`)
    BROKKR__AGENT__AGENT_NAME *            its name on the broker
    BROKKR__AGENT__CLUSTER_NAME *          its cluster name on the broker
    BROKKR__AGENT__BROKER_URL              http://localhost:3000
    BROKKR__AGENT__CA_BUNDLE               CA (PEM) of an https broker; else system CAs
    BROKKR__AGENT__KUBECONFIG_PATH         else $KUBECONFIG, else in-cluster
    BROKKR__AGENT__POLLING_INTERVAL        poll every 10 s
    BROKKR__AGENT__RECONCILE_INTERVAL      re-apply (drift) every 300 s
    BROKKR__AGENT__MAX_CONCURRENT_RECONCILES  4 stacks at once
    BROKKR__AGENT__CRD_ESTABLISH_TIMEOUT   a new CRD settles in 60 s
    BROKKR__AGENT__MAX_CONCURRENT_WORK_ORDERS  2 work orders at once
    BROKKR__AGENT__WORK_ORDER_TIMEOUT      a work order runs at most 900 s
    BROKKR__AGENT__WORK_ORDER_CHECK_INTERVAL  its Job/BuildRun read every 5 s
    BROKKR__AGENT__DEPLOYMENT_HEALTH_ENABLED  report deployment health (true)
    BROKKR__AGENT__DEPLOYMENT_HEALTH_CHECK_INTERVAL  assess every 10 s, report changes
    BROKKR__AGENT__DEPLOYMENT_HEALTH_INTERVAL  report all, even unchanged, every 60 s
    BROKKR__AGENT__DIAGNOSTICS_INTERVAL    diagnostic requests fetched every 10 s
    BROKKR__AGENT__DIAGNOSTICS_TIMEOUT     collecting one takes at most 60 s
    BROKKR__AGENT__DIAGNOSTICS_LOG_LINES   the last 100 lines of each log
    BROKKR__AGENT__DIAGNOSTICS_LOG_BYTES   each log tail at most 65536 bytes
    BROKKR__AGENT__DIAGNOSTICS_MAX_EVENTS  the newest 50 events
    BROKKR__AGENT__DIAGNOSTICS_MAX_BYTES   a result at most 1048576 bytes
    BROKKR__AGENT__WEBHOOK_DELIVERY_ENABLED  deliver webhooks for its labels (true)
    BROKKR__AGENT__WEBHOOK_DELIVERY_INTERVAL  webhook deliveries claimed every 10 s
    BROKKR__AGENT__WS_URL                  else ws(s)://<broker>/internal/ws/agent
    BROKKR__AGENT__WS_FORCE_REST           REST only, no WebSocket (false)
    BROKKR__AGENT__WS_ACK_TIMEOUT          unacknowledged reports go over REST after 5 s
    BROKKR__AGENT__KUBE_EVENTS_ENABLED     ship stacks' Kubernetes events (true)
    BROKKR__AGENT__KUBE_EVENT_UID_CACHE_CAP  10000 object owners remembered
    BROKKR__AGENT__POD_LOGS_ENABLED        ship opted-in pods' logs (true)
    BROKKR__AGENT__POD_LOG_LINES_PER_SECOND  100 lines a second per container
    BROKKR__AGENT__BACKOFF_MIN             retry backoff from 1 s
    BROKKR__AGENT__BACKOFF_MAX             up to 300 s
    BROKKR__AGENT__MAX_RETRIES             60 start-up tries to reach the broker
    BROKKR__AGENT__NAMESPACE               inventories in brokkr-system
    BROKKR__AGENT__HEALTH_HOST             probes on 0.0.0.0
    BROKKR__AGENT__HEALTH_PORT             probes on port 8080
    BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS  25 s to finish on SIGTERM
    BROKKR__AGENT__MAX_YAML_DEPTH          100 levels
    BROKKR__AGENT__MAX_YAML_SCALAR_CHARS   1048576 characters
    BROKKR__AGENT__MAX_YAML_EXPANSION      10 times by aliases
    BROKKR__LOG__LEVEL                     info (debug shows HTTP requests)
    BROKKR__LOG__FORMAT                    text or json

    \b
    Example:
      BROKKR__AGENT__BROKER_URL=https://brokkr.example.com \\
      BROKKR__AGENT__PAK="$PAK" BROKKR__AGENT__AGENT_NAME=edge-1 \\
      BROKKR__AGENT__CLUSTER_NAME=prod-eu brokkr agent run
    """
    from brokkr.agent import main

    raise typer.Exit(code=main.main())
