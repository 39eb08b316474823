"""Named connection profiles (URL, PAK, TLS options) in a TOML file readable by its owner only.

Location: ``$BROKKR_CONFIG_DIR/profiles.toml``, else ``$XDG_CONFIG_HOME/brokkr/profiles.toml``,
else ``~/.config/brokkr/profiles.toml``. ``BROKKR_URL``, ``BROKKR_PAK`` and ``BROKKR_CA_BUNDLE``
override the profile.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import msgspec

DEFAULT_PROFILE = "default"
# A CA bundle (PEM) trusted for the broker's certificate, over the profile's ``ca_cert``.
CA_BUNDLE_ENV = "BROKKR_CA_BUNDLE"


class Profile(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    url: str
    pak: str | None = None
    ca_cert: str | None = None
    insecure: bool = False


class ProfileError(Exception):
    pass


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("BROKKR_CONFIG_DIR"):
        return Path(environ["BROKKR_CONFIG_DIR"]) / "profiles.toml"
    base = (
        Path(environ["XDG_CONFIG_HOME"])
        if environ.get("XDG_CONFIG_HOME")
        else Path.home() / ".config"
    )
    return base / "brokkr" / "profiles.toml"


def load_all(path: Path) -> dict[str, Profile]:
    if not path.exists():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return msgspec.convert(raw.get("profiles", {}), dict[str, Profile])
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ProfileError(f"{path} is not a valid profiles file: {exc}") from exc


def save(path: Path, name: str, profile: Profile) -> None:
    """Add or replace one profile; the file is written with mode 0600 (it holds PAKs)."""
    profiles = load_all(path)
    profiles[name] = profile
    lines: list[str] = []
    for profile_name, entry in sorted(profiles.items()):
        lines.append(f"[profiles.{json.dumps(profile_name)}]")
        for key, value in msgspec.to_builtins(entry).items():
            # JSON strings and booleans are valid TOML basic strings and booleans.
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, "\n".join(lines).encode("utf-8"))
    finally:
        os.close(descriptor)


def resolve(
    environ: Mapping[str, str],
    *,
    name: str | None,
    url: str | None,
    pak: str | None,
    ca_bundle: str | None = None,
) -> Profile:
    """Command-line options > ``BROKKR_URL``/``BROKKR_PAK``/``BROKKR_CA_BUNDLE`` > the named
    (or default) profile. A CA bundle given by option or environment turns verification on
    even for a profile saved with ``--insecure``."""
    chosen = name or environ.get("BROKKR_PROFILE") or DEFAULT_PROFILE
    stored = load_all(config_path(environ)).get(chosen)
    if name and stored is None:
        raise ProfileError(
            f"no profile named {name!r}; create it with `brokkr login --profile {name}`"
        )
    final_url = url or environ.get("BROKKR_URL") or (stored.url if stored else None)
    if not final_url:
        raise ProfileError(
            "no broker URL: run `brokkr login --url URL --pak PAK`, "
            "or set BROKKR_URL and BROKKR_PAK"
        )
    final_pak = pak or environ.get("BROKKR_PAK") or (stored.pak if stored else None)
    given_ca = ca_bundle or environ.get(CA_BUNDLE_ENV)
    return Profile(
        url=final_url,
        pak=final_pak,
        ca_cert=given_ca or (stored.ca_cert if stored else None),
        insecure=False if given_ca else (stored.insecure if stored else False),
    )
