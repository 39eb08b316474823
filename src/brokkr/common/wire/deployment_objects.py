"""Deployment objects: immutable, versioned multi-document Kubernetes YAML of one stack."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class DeploymentObject(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    sequence_id: int
    stack_id: UUID
    yaml_content: str
    yaml_checksum: str
    submitted_at: datetime
    is_deletion_marker: bool


class CreateDeploymentObjectRequest(msgspec.Struct, kw_only=True, frozen=True):
    yaml_content: str
    is_deletion_marker: bool = False
