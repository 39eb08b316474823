"""Stack templates (versioned, per owner + name), their labels and annotations, instantiation,
and the broker's extensions: rendering without storing, and the provenance of an instantiated
deployment object."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from brokkr.common.wire import types
from brokkr.common.wire.errors import ErrorBody
from brokkr.common.wire.types import Description, Label, Name


class StackTemplate(msgspec.Struct, kw_only=True, frozen=True):
    """One version of a template; ``generator_id`` is null for a system (admin-created) template."""

    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    description: str | None
    generator_id: UUID | None
    version: int
    template_content: str
    parameters_schema: str
    checksum: str


class CreateTemplateRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``parameters_schema`` is a JSON Schema encoded as a string, as the reference sends it."""

    name: Name
    template_content: str
    parameters_schema: str
    description: Description | None = None

    def __post_init__(self) -> None:
        types.normalize(self, "name", max_length=types.NAME_LENGTH)


class UpdateTemplateRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Makes a new version; a null or absent ``description`` keeps the addressed version's."""

    template_content: str
    parameters_schema: str
    description: Description | None = None


class TemplateLabel(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    template_id: UUID
    label: str
    created_at: datetime


class NewTemplateLabel(msgspec.Struct, kw_only=True, frozen=True):
    """The object form; the reference form, a bare JSON string, is accepted too."""

    label: Label
    template_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "label", max_length=types.LABEL_LENGTH)


class TemplateAnnotation(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    template_id: UUID
    key: str
    value: str
    created_at: datetime


class NewTemplateAnnotation(msgspec.Struct, kw_only=True, frozen=True):
    key: Label
    value: Label
    template_id: UUID | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        types.normalize(self, "key", "value", max_length=types.LABEL_LENGTH)


class TemplateInstantiationRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``template_id`` names one version (a row id); ``parameters`` is any JSON, normally an
    object."""

    template_id: UUID
    parameters: Any


class TemplateRenderRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Extension (``POST /templates/{id}/render``): the parameters to render the version with."""

    parameters: Any


class TemplateRenderResult(msgspec.Struct, kw_only=True, frozen=True):
    """Extension: what instantiating this version with these parameters would store, and whether
    the broker would accept it as a deployment object (``validation_error`` says why not)."""

    template_id: UUID
    template_version: int
    yaml_content: str
    yaml_checksum: str
    valid: bool
    validation_error: ErrorBody | None = None


class TemplateProvenance(msgspec.Struct, kw_only=True, frozen=True):
    """Extension (``GET /deployment-objects/{id}/provenance``): the template version and parameters
    a deployment object was rendered from."""

    deployment_object_id: UUID
    template_id: UUID
    template_version: int
    parameters: Any
    created_at: datetime
