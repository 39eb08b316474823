"""Layered settings: struct defaults < TOML file < ``BROKKR__SECTION__KEY`` environment (D20).

Any msgspec Struct whose fields are sections (Structs) or top-level scalars can be loaded.
Unknown keys and malformed values fail with a message that names the dotted key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

ENV_PREFIX = "BROKKR__"
CONFIG_FILE_ENV = "BROKKR_CONFIG_FILE"

SettingsT = TypeVar("SettingsT", bound=msgspec.Struct)


class LogSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The ``[log]`` section every program shares."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["text", "json"] = "text"


class SettingsError(Exception):
    """Configuration cannot be loaded; the message names the offending key, ``keys`` lists them
    (dotted; empty when the file itself is missing or unreadable)."""

    def __init__(self, message: str, *, keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys


def load(
    settings_type: type[SettingsT],
    *,
    environ: Mapping[str, str],
    config_file: Path | None = None,
    foreign_sections: Collection[str] = (),
) -> SettingsT:
    """Build ``settings_type`` from the file named by ``config_file`` (or ``BROKKR_CONFIG_FILE``)
    and the ``BROKKR__*`` variables of ``environ``.

    ``foreign_sections`` are sections that belong to another program sharing the environment
    (the agent's ``BROKKR__AGENT__*`` next to a broker); they are ignored rather than rejected.
    """
    layered: dict[str, Any] = {}
    path = config_file or (Path(environ[CONFIG_FILE_ENV]) if environ.get(CONFIG_FILE_ENV) else None)
    if path is not None:
        _merge(layered, _read_toml(path))
    _merge(layered, _from_environ(settings_type, environ, foreign_sections))
    for section in foreign_sections:
        layered.pop(section, None)
    _reject_unknown(settings_type, layered, prefix="")
    try:
        return msgspec.convert(layered, settings_type, strict=False)
    except msgspec.ValidationError as exc:
        key, problem = _dotted(str(exc))
        message = f"invalid configuration value: {key}: {problem}" if key else str(exc)
        raise SettingsError(message, keys=(key,) if key else ()) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise SettingsError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from exc


def _from_environ(
    settings_type: type[msgspec.Struct],
    environ: Mapping[str, str],
    foreign_sections: Collection[str],
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    sections = _section_types(settings_type)
    for name, raw in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if parts[0] in foreign_sections:
            continue
        if len(parts) == 1:
            found[parts[0]] = raw
        elif len(parts) == 2:
            section_type = sections.get(parts[0])
            value: Any = raw
            if section_type is not None and _is_list_field(section_type, parts[1]):
                value = _parse_list(raw, key=".".join(parts))
            found.setdefault(parts[0], {})
            if not isinstance(found[parts[0]], dict):
                raise SettingsError(f"{name}: '{parts[0]}' is not a section", keys=(parts[0],))
            found[parts[0]][parts[1]] = value
        else:
            key = ".".join(parts)
            raise SettingsError(f"unknown configuration key {key} (from {name})", keys=(key,))
    return found


def _parse_list(raw: str, *, key: str) -> list[str]:
    text = raw.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{key}: not a JSON list: {raw!r}", keys=(key,)) from exc
        return [str(item) for item in parsed]
    return [item.strip() for item in text.split(",") if item.strip()]


def _section_types(settings_type: type[msgspec.Struct]) -> dict[str, type[msgspec.Struct]]:
    sections: dict[str, type[msgspec.Struct]] = {}
    for field in msgspec.structs.fields(settings_type):
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            sections[field.encode_name] = field.type
    return sections


def _is_list_field(section_type: type[msgspec.Struct], key: str) -> bool:
    for field in msgspec.structs.fields(section_type):
        if field.encode_name == key:
            return getattr(field.type, "__origin__", None) is list
    return False


def _reject_unknown(
    settings_type: type[msgspec.Struct], values: Mapping[str, Any], prefix: str
) -> None:
    known = {field.encode_name: field.type for field in msgspec.structs.fields(settings_type)}
    for key, value in values.items():
        if key not in known:
            raise SettingsError(f"unknown configuration key {prefix}{key}", keys=(prefix + key,))
        field_type = known[key]
        if isinstance(field_type, type) and issubclass(field_type, msgspec.Struct):
            if not isinstance(value, Mapping):
                raise SettingsError(
                    f"configuration key {prefix}{key} must be a section (table)",
                    keys=(prefix + key,),
                )
            _reject_unknown(field_type, value, prefix=f"{prefix}{key}.")


def _dotted(message: str) -> tuple[str, str]:
    """Split msgspec's ``... - at `$.broker.port``` into ``("broker.port", "...")``; the key is
    empty when msgspec names none."""
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return "", message
    return where.rstrip("`"), text


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
