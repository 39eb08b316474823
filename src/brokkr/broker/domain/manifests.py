"""Deployment-object content rules: checksums and the shape of the Kubernetes YAML. Pure."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from brokkr.broker.domain import errors

# A marker's content is empty; its checksum is SHA-256 like every other (D13).
MARKER_CONTENT = ""


def checksum(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def validate(content: str) -> int:
    """Check that ``content`` holds one or more Kubernetes objects, each a mapping with
    ``apiVersion``, ``kind`` and ``metadata.name``. Returns the number of objects.

    Raises ``InvalidYaml``, or ``InvalidDeploymentObject`` naming the (0-based) document index
    that is wrong.
    """
    if not content.strip():
        raise errors.InvalidDeploymentObject("yaml_content is empty")
    try:
        documents = list(yaml.safe_load_all(content))
    except yaml.YAMLError as exc:
        raise errors.InvalidYaml(_first_line(exc)) from exc
    count = 0
    for index, document in enumerate(documents):
        if document is None:
            continue
        problem = _problem(document)
        if problem:
            raise errors.InvalidDeploymentObject(problem, document=index)
        count += 1
    if count == 0:
        raise errors.InvalidDeploymentObject("yaml_content holds no Kubernetes object")
    return count


def _problem(document: Any) -> str | None:
    if not isinstance(document, dict):
        return "is not a mapping"
    for field in ("apiVersion", "kind"):
        value = document.get(field)
        if not isinstance(value, str) or not value.strip():
            return f"missing or empty {field}"
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name.strip():
        return "missing or empty metadata.name"
    return None


def _first_line(exc: yaml.YAMLError) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
