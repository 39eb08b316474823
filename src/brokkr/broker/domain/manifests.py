"""Deployment-object content rules: checksums and the shape of the Kubernetes YAML. Pure."""

from __future__ import annotations

import hashlib
from typing import Any

from brokkr.broker.domain import errors
from brokkr.common import yaml_guard

# A marker's content is empty; its checksum is SHA-256 like every other (D13).
MARKER_CONTENT = ""


def checksum(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def check_size(content: str, *, limit_bytes: int) -> None:
    """Raise ``DeploymentObjectTooLarge`` when ``content`` is over ``limit_bytes`` in UTF-8."""
    # Cheap first: UTF-8 takes 1 to 4 bytes per character, so most answers need no encoding.
    if len(content) * 4 <= limit_bytes:
        return
    if len(content) > limit_bytes or len(content.encode("utf-8", "surrogatepass")) > limit_bytes:
        raise errors.DeploymentObjectTooLarge(limit_bytes)


def validate(content: str, limits: yaml_guard.YamlLimits) -> int:
    """Check that ``content`` holds one or more Kubernetes objects, each a mapping with
    ``apiVersion``, ``kind`` and ``metadata.name``, and stays within ``limits`` (which every
    agent applies again before stamping). Returns the number of objects.

    Raises ``InvalidYaml``, ``YamlLimitExceeded``, or ``InvalidDeploymentObject``; each names
    the (0-based) document index that is wrong.
    """
    if not content.strip():
        raise errors.InvalidDeploymentObject("yaml_content is empty")
    try:
        documents = yaml_guard.load_all(content, limits)
    except yaml_guard.YamlLimitExceeded as exc:
        raise errors.YamlLimitExceeded(exc.limit, exc.reason, document=exc.document - 1) from exc
    except yaml_guard.YamlError as exc:
        raise errors.InvalidYaml(f"document {exc.document - 1}: {exc.reason}") from exc
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
