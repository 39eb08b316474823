"""Webhook subscription rules (D18): what a valid subscription is and which events reach it.
Pure functions, no I/O.

Matching: a subscription receives an event when one of its patterns matches the type (``*``
everything, ``<prefix>.*`` every type of that family, else the exact name) and every filter it
has passes. ``filters.agent_id`` / ``filters.stack_id`` pass for events whose data names that
agent / stack. ``filters.labels`` (key → value) passes when the event's agent or the event's
stack carries every one of these pairs as annotations (the project's key/value metadata); an
event that names neither agent nor stack never passes a label filter.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

from brokkr.broker.domain import errors, events
from brokkr.common import wire
from brokkr.common.wire.types import Label, Name

DEFAULT_MAX_RETRIES = 5
MAX_RETRIES = 20
DEFAULT_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 60
MAX_URL_CHARS = 2048
MAX_EVENT_TYPES = 50
MAX_AUTH_HEADER_CHARS = 4096
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 512
MAX_LABELS = 20
WILDCARD = "*"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, kw_only=True)
class NewSubscription:
    """A create request that passed every rule (NFC names and labels, defaults applied)."""

    name: str
    url: str
    event_types: list[str]
    auth_header: str | None
    secret: str | None
    filters: wire.WebhookFilters | None
    target_labels: list[str] | None
    max_retries: int
    timeout_seconds: int


def pattern_matches(pattern: str, event_type: str) -> bool:
    if pattern == WILDCARD:
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def wants(patterns: Iterable[str], event_type: str) -> bool:
    return any(pattern_matches(pattern, event_type) for pattern in patterns)


def needs_annotations(filters: wire.WebhookFilters | None) -> bool:
    """Whether matching needs the annotations of the event's agent and stack."""
    return filters is not None and bool(filters.labels)


def passes(
    filters: wire.WebhookFilters | None,
    data: Mapping[str, Any],
    annotations: Iterable[Mapping[str, str]] = (),
) -> bool:
    """Whether an event with ``data`` passes ``filters``; ``annotations``: those of the event's
    agent and of its stack (whichever the event names), needed only for a label filter."""
    if filters is None:
        return True
    if filters.agent_id is not None and _id(data.get("agent_id")) != str(filters.agent_id):
        return False
    if filters.stack_id is not None and _id(data.get("stack_id")) != str(filters.stack_id):
        return False
    if filters.labels:
        wanted = filters.labels.items()
        return any(all(carried.get(k) == v for k, v in wanted) for carried in annotations)
    return True


def _id(value: object) -> str | None:
    return None if value is None else str(value)


def parse_networks(texts: Iterable[str]) -> list[Network]:
    """CIDRs (or single addresses); ``ValueError`` names the first that is not one."""
    return [ipaddress.ip_network(text.strip(), strict=False) for text in texts]


def denied(host: str, networks: Iterable[Network]) -> bool:
    """Whether ``host`` is an IP address inside one of ``networks``; a host name is not (the
    delivery checks the addresses it resolves to)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address.version == network.version and address in network for network in networks)


def validate_create(
    request: wire.CreateWebhookRequest, networks: Iterable[Network]
) -> NewSubscription:
    """Every rule of a create request; every problem at once (422 ``validation_failed``)."""
    problems: dict[str, str] = {}
    name = _name(request.name, problems)
    url = _url(request.url, networks, problems)
    event_types = _event_types(request.event_types, problems)
    auth_header = _auth_header(request.auth_header, problems)
    secret = _secret(request.secret, problems)
    filters = _filters(request.filters, problems)
    target_labels = _labels(request.target_labels, problems)
    max_retries = _bounded(
        "max_retries", request.max_retries, DEFAULT_MAX_RETRIES, 0, MAX_RETRIES, problems
    )
    timeout = _bounded(
        "timeout_seconds",
        request.timeout_seconds,
        DEFAULT_TIMEOUT_SECONDS,
        1,
        MAX_TIMEOUT_SECONDS,
        problems,
    )
    if problems:
        raise errors.ValidationFailed(problems)
    return NewSubscription(
        name=name,
        url=url,
        event_types=event_types,
        auth_header=auth_header,
        secret=secret,
        filters=filters,
        target_labels=target_labels,
        max_retries=max_retries,
        timeout_seconds=timeout,
    )


def validate_update(
    request: wire.UpdateWebhookRequest, networks: Iterable[Network]
) -> dict[str, Any]:
    """The fields the request changes, checked like a create's (``None``: cleared); every
    problem at once (422 ``validation_failed``). An empty answer changes nothing."""
    problems: dict[str, str] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "name": lambda value: _name(value, problems),
        "url": lambda value: _url(value, networks, problems),
        "event_types": lambda value: _event_types(value, problems),
        "auth_header": lambda value: _auth_header(value, problems),
        "secret": lambda value: _secret(value, problems),
        "filters": lambda value: _filters(value, problems),
        "target_labels": lambda value: _labels(value, problems),
        "enabled": lambda value: value,
        "max_retries": lambda value: _bounded(
            "max_retries", value, DEFAULT_MAX_RETRIES, 0, MAX_RETRIES, problems
        ),
        "timeout_seconds": lambda value: _bounded(
            "timeout_seconds", value, DEFAULT_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS, problems
        ),
    }
    changes = {
        field: check(getattr(request, field))
        for field, check in checks.items()
        if getattr(request, field) is not msgspec.UNSET
    }
    if problems:
        raise errors.ValidationFailed(problems)
    return changes


def _conforms(value: object, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


def _name(name: str, problems: dict[str, str]) -> str:
    if not _conforms(name, Name):
        problems["name"] = "must be 1-255 characters, not blank, no control characters"
    return unicodedata.normalize("NFC", name)


def _url(url: str, networks: Iterable[Network], problems: dict[str, str]) -> str:
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        problems["url"] = f"must be at most {MAX_URL_CHARS} characters"
        return url
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        problems["url"] = "must not contain whitespace or control characters"
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        problems["url"] = "is not a valid URL"
        return url
    if parts.scheme.lower() not in ("http", "https"):
        problems["url"] = "must start with http:// or https://"
    elif not host:
        problems["url"] = "must name a host"
    elif denied(host, networks):
        problems["url"] = "points into a network denied by broker.webhook_denied_networks"
    return url


def _event_types(patterns: list[str], problems: dict[str, str]) -> list[str]:
    if not 1 <= len(patterns) <= MAX_EVENT_TYPES:
        problems["event_types"] = f"must hold 1 to {MAX_EVENT_TYPES} patterns"
        return patterns
    unknown = [pattern for pattern in patterns if not _known_pattern(pattern)]
    if unknown:
        shown = ", ".join(repr(pattern[:100]) for pattern in unknown[:10])
        problems["event_types"] = (
            f"unknown event type or pattern: {shown}; use '*', '<prefix>.*' or a name from "
            "GET /webhooks/event-types"
        )
    return list(dict.fromkeys(patterns))


def _known_pattern(pattern: str) -> bool:
    if pattern == WILDCARD or pattern in events.CATALOGUE:
        return True
    return pattern.endswith(".*") and pattern[:-2] in events.PREFIXES


def _auth_header(value: str | None, problems: dict[str, str]) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_AUTH_HEADER_CHARS:
        problems["auth_header"] = f"must be 1-{MAX_AUTH_HEADER_CHARS} characters, not blank"
    elif any(char in value for char in "\r\n\x00"):
        problems["auth_header"] = "must not contain CR, LF or NUL"
    return value


def _secret(value: str | None, problems: dict[str, str]) -> str | None:
    if value is None:
        return None
    if not MIN_SECRET_CHARS <= len(value) <= MAX_SECRET_CHARS:
        problems["secret"] = f"must be {MIN_SECRET_CHARS}-{MAX_SECRET_CHARS} characters"
    elif "\x00" in value:
        problems["secret"] = "must not contain NUL characters"  # noqa: S105 - a message
    return value


def _filters(
    filters: wire.WebhookFilters | None, problems: dict[str, str]
) -> wire.WebhookFilters | None:
    if filters is None:
        return None
    labels = filters.labels or {}
    if len(labels) > MAX_LABELS:
        problems["filters.labels"] = f"must hold at most {MAX_LABELS} entries"
    elif not all(
        _conforms(key, Label) and _conforms(value, Label) for key, value in labels.items()
    ):
        problems["filters.labels"] = (
            "keys and values must be 1-64 characters without whitespace or control characters"
        )
    for field, value in (("agent_id", filters.agent_id), ("stack_id", filters.stack_id)):
        if value is not None and value.int == 0:
            problems[f"filters.{field}"] = "must not be the nil UUID"
    normalized = {
        unicodedata.normalize("NFC", key): unicodedata.normalize("NFC", value)
        for key, value in labels.items()
    }
    if filters.agent_id is None and filters.stack_id is None and not normalized:
        return None
    return wire.WebhookFilters(
        agent_id=filters.agent_id, stack_id=filters.stack_id, labels=normalized or None
    )


def _labels(labels: list[str] | None, problems: dict[str, str]) -> list[str] | None:
    """Target labels; an empty list is stored as none (the broker delivers), so no delivery is
    ever claimable by both the broker and every agent."""
    if not labels:
        return None
    if len(labels) > MAX_LABELS:
        problems["target_labels"] = f"must hold at most {MAX_LABELS} labels"
        return labels
    bad = [label for label in labels if not _conforms(label, Label)]
    if bad:
        problems["target_labels"] = (
            "labels must be 1-64 characters without whitespace or control characters"
        )
    return list(dict.fromkeys(unicodedata.normalize("NFC", label) for label in labels))


def _bounded(
    name: str, value: int | None, default: int, low: int, high: int, problems: dict[str, str]
) -> int:
    if value is None:
        return default
    if not low <= value <= high:
        problems[name] = f"must be between {low} and {high}"
    return value
