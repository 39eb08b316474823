"""Label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!``exists) and the few
field selectors the real API server supports for every resource."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ApiError, bad_request

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(f"^{_KEY}$")
_VALUE_RE = re.compile(f"^{_VALUE}$")
_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
_CMP_RE = re.compile(r"^([^=!\s]+)\s*(==|=|!=)\s*(.*)$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _error(detail: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {detail}")


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or len(key.rpartition("/")[2]) > 63:
        raise _error(
            f'invalid label key "{key}": name part must consist of alphanumeric characters'
        )
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.match(value) or len(value) > 63:
        raise _error(f'invalid label value: "{value}": a valid label must be an empty string or ')
    return value


def _requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    text = text.strip()
    if not text:
        raise _error("found '', expected: !, identifier, or 'end of string'")
    match = _SET_RE.match(text)
    if match:
        key, op, raw = _check_key(match[1]), match[2], match[3]
        values = {_check_value(v.strip()) for v in raw.split(",") if v.strip()}
        if not values:
            raise _error("for 'in', 'notin' operators, values set can't be empty")
        if op == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: key not in labels or labels[key] not in values
    match = _CMP_RE.match(text)
    if match:
        key, op, value = _check_key(match[1]), match[2], _check_value(match[3].strip())
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    if text.startswith("!"):
        key = _check_key(text[1:].strip())
        return lambda labels: key not in labels
    key = _check_key(text)
    return lambda labels: key in labels


def label_selector(text: str | None) -> Predicate:
    """A predicate over objects for a ``labelSelector`` query parameter."""
    if not text or not text.strip():
        return lambda obj: True
    requirements = [_requirement(part) for part in _split_top_level(text)]

    def matches(obj: Obj) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


# Fields every resource can be selected by, plus the few well-known per-kind extras.
_FIELDS: dict[str, tuple[str, ...]] = {
    "*": ("metadata.name", "metadata.namespace"),
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase"),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "reason",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
}


def _field_value(obj: Obj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    return node if isinstance(node, str) else str(node)


def field_selector(text: str | None, kind: str) -> Predicate:
    """A predicate over objects for a ``fieldSelector`` query parameter."""
    if not text or not text.strip():
        return lambda obj: True
    allowed = _FIELDS["*"] + _FIELDS.get(kind, ())
    checks: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        match = _CMP_RE.match(part.strip())
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match[1], match[2], match[3].strip()
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        checks.append((field, op != "!=", value))

    def matches(obj: Obj) -> bool:
        return all((_field_value(obj, f) == v) == eq for f, eq, v in checks)

    return matches
