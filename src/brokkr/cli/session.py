"""One command's connection to the broker: the profile chosen by the global options, a sync
client, and the translation of client errors into a message and a non-zero exit."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import msgspec
import typer

from brokkr.cli import output, profiles
from brokkr.client import BrokkrAPIError, BrokkrCertificateError, BrokkrClient, BrokkrError


class Options(msgspec.Struct, kw_only=True):
    profile: str | None = None
    url: str | None = None
    pak: str | None = None
    ca_bundle: str | None = None
    timeout: float = 30.0


def options(ctx: typer.Context) -> Options:
    found = ctx.find_object(Options)
    return found if found is not None else Options()


@contextmanager
def client(ctx: typer.Context) -> Iterator[BrokkrClient]:
    """A client for this command; any Brokkr error ends the command with exit code 1."""
    chosen = options(ctx)
    try:
        profile = profiles.resolve(
            os.environ,
            name=chosen.profile,
            url=chosen.url,
            pak=chosen.pak,
            ca_bundle=chosen.ca_bundle,
        )
    except profiles.ProfileError as exc:
        output.error(str(exc))
        raise typer.Exit(2) from exc
    verify: bool | str = False if profile.insecure else (profile.ca_cert or True)
    with guarded():  # an unreadable CA bundle is reported like any client error
        brokkr = BrokkrClient(profile.url, profile.pak, timeout=chosen.timeout, verify=verify)
    try:
        with guarded():
            yield brokkr
    finally:
        brokkr.close()


@contextmanager
def guarded() -> Iterator[None]:
    try:
        yield
    except BrokkrAPIError as exc:
        output.error(f"{exc.message} ({exc.status} {exc.code})")
        for line in detail_lines(exc.details):
            output.error_detail(line)
        raise typer.Exit(1) from exc
    except BrokkrCertificateError as exc:
        output.error(str(exc))
        output.error_detail(
            "trust the CA that signed the broker's certificate: --ca-bundle FILE (before the "
            "command), BROKKR_CA_BUNDLE, or `brokkr login --ca-cert FILE`"
        )
        raise typer.Exit(1) from exc
    except BrokkrError as exc:
        output.error(str(exc))
        raise typer.Exit(1) from exc


def detail_lines(details: Mapping[str, Any]) -> list[str]:
    """An error's details as ``what: why`` lines: one per invalid field, then the rest."""
    fields = details.get("fields")
    lines = (
        [f"{field}: {reason}" for field, reason in fields.items()]
        if isinstance(fields, Mapping)
        else []
    )
    for key, value in details.items():
        if key != "fields":
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            lines.append(f"{key}: {shown}")
    return lines
