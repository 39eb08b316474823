"""The one `brokkr` command: `serve`, `db upgrade`, `admin rotate-pak`."""

from __future__ import annotations

from pathlib import Path

import typer

from brokkr.common.settings import SettingsError

app = typer.Typer(
    name="brokkr",
    help="Brokkr: distribute Kubernetes objects across many clusters.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
admin_app = typer.Typer(help="Admin identity commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")

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


def _settings(config: Path | None):  # type: ignore[no-untyped-def]
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
    config: Path | None = ConfigOption,
) -> None:
    """Start the broker.

    With no configuration it stores everything in SQLite under ./.brokkr and, on first start,
    prints a generated admin PAK once (also saved to ./.brokkr/admin.pak, mode 0600).

    Example: BROKKR__DATABASE__URL=postgresql://brokkr@db/brokkr brokkr serve --port 3000
    """
    from brokkr.broker import main

    main.serve(_settings(config), host=host, port=port)


@db_app.command("upgrade")
def db_upgrade(config: Path | None = ConfigOption) -> None:
    """Apply pending schema migrations (the broker also does this at start).

    Example: BROKKR__DATABASE__URL=postgresql://brokkr@db/brokkr brokkr db upgrade
    """
    from brokkr.broker import main

    revision = main.upgrade_database(_settings(config))
    typer.echo(f"database schema at revision {revision}")


@admin_app.command("rotate-pak")
def admin_rotate_pak(config: Path | None = ConfigOption) -> None:
    """Replace the admin PAK and print the new one. The old key stops working on every broker.

    Example: BROKKR__DATABASE__URL=postgresql://brokkr@db/brokkr brokkr admin rotate-pak
    """
    from brokkr.broker import main

    typer.echo(main.rotate_admin_pak(_settings(config)))
