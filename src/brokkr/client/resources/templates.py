"""/templates (versioned per owner + name), their labels and annotations, rendering, and
instantiation into a stack (``/stacks/{id}/deployment-objects/from-template``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import msgspec

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http, segment
from brokkr.common import wire

# A parameter schema as the broker stores it (JSON text) or as a mapping the client encodes.
Schema = str | Mapping[str, Any]


class Templates:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(self) -> builtins.list[wire.StackTemplate]:
        """Every live version the caller may read: system templates and its own (admins: all)."""
        return await self._http.collect("/api/v1/templates", builtins.list[wire.StackTemplate])

    async def get(self, template_id: UUID) -> wire.StackTemplate:
        return await self._http.call("GET", f"/api/v1/templates/{template_id}", wire.StackTemplate)

    async def find(self, name: str, version: int | None = None) -> wire.StackTemplate | None:
        """The version ``version`` (default: the newest) of the template named ``name``.

        A caller's own template wins over a system template of the same name; among an admin's
        view of several generators' templates of that name, the newest version wins.
        """
        found = [
            template
            for template in await self.list()
            if template.name == name and (version is None or template.version == version)
        ]
        return max(
            found, key=lambda t: (t.generator_id is not None, t.version, t.created_at), default=None
        )

    async def create(
        self,
        *,
        name: str,
        template_content: str,
        parameters_schema: Schema,
        description: str | None = None,
    ) -> wire.StackTemplate:
        """Version 1 of a new name, else the next version of that name (for the same owner)."""
        body = wire.CreateTemplateRequest(
            name=name,
            template_content=template_content,
            parameters_schema=_schema_text(parameters_schema),
            description=description,
        )
        return await self._http.call("POST", "/api/v1/templates", wire.StackTemplate, json=body)

    async def update(
        self,
        template_id: UUID,
        *,
        template_content: str,
        parameters_schema: Schema,
        description: str | None = None,
    ) -> wire.StackTemplate:
        """A new version (a new id); ``template_id`` stays as it was. No description: kept."""
        body = wire.UpdateTemplateRequest(
            template_content=template_content,
            parameters_schema=_schema_text(parameters_schema),
            description=description,
        )
        return await self._http.call(
            "PUT", f"/api/v1/templates/{template_id}", wire.StackTemplate, json=body
        )

    async def delete(self, template_id: UUID) -> None:
        """Delete this one version; other versions stay."""
        await self._http.send("DELETE", f"/api/v1/templates/{template_id}")

    async def list_labels(self, template_id: UUID) -> builtins.list[wire.TemplateLabel]:
        return await self._http.call(
            "GET", f"/api/v1/templates/{template_id}/labels", builtins.list[wire.TemplateLabel]
        )

    async def add_label(self, template_id: UUID, label: str) -> wire.TemplateLabel:
        return await self._http.call(
            "POST",
            f"/api/v1/templates/{template_id}/labels",
            wire.TemplateLabel,
            json=wire.NewTemplateLabel(label=label, template_id=template_id),
        )

    async def remove_label(self, template_id: UUID, label: str) -> None:
        await self._http.send("DELETE", f"/api/v1/templates/{template_id}/labels/{segment(label)}")

    async def list_annotations(self, template_id: UUID) -> builtins.list[wire.TemplateAnnotation]:
        return await self._http.call(
            "GET",
            f"/api/v1/templates/{template_id}/annotations",
            builtins.list[wire.TemplateAnnotation],
        )

    async def add_annotation(
        self, template_id: UUID, key: str, value: str
    ) -> wire.TemplateAnnotation:
        return await self._http.call(
            "POST",
            f"/api/v1/templates/{template_id}/annotations",
            wire.TemplateAnnotation,
            json=wire.NewTemplateAnnotation(key=key, value=value, template_id=template_id),
        )

    async def remove_annotation(self, template_id: UUID, key: str) -> None:
        await self._http.send(
            "DELETE", f"/api/v1/templates/{template_id}/annotations/{segment(key)}"
        )

    async def render(self, template_id: UUID, parameters: Any) -> wire.TemplateRenderResult:
        """What instantiating this version with ``parameters`` would store, and whether the
        broker would accept it; nothing is stored."""
        return await self._http.call(
            "POST",
            f"/api/v1/templates/{template_id}/render",
            wire.TemplateRenderResult,
            json=wire.TemplateRenderRequest(parameters=parameters),
        )

    async def instantiate(
        self, stack_id: UUID, template_id: UUID, parameters: Any
    ) -> wire.DeploymentObject:
        """Render this version with ``parameters`` into a new deployment object of the stack."""
        return await self._http.call(
            "POST",
            f"/api/v1/stacks/{stack_id}/deployment-objects/from-template",
            wire.DeploymentObject,
            json=wire.TemplateInstantiationRequest(template_id=template_id, parameters=parameters),
        )


def _schema_text(schema: Schema) -> str:
    return schema if isinstance(schema, str) else msgspec.json.encode(schema).decode()


class BlockingTemplates(Blocking[Templates]):
    list = blocking(Templates.list)
    get = blocking(Templates.get)
    find = blocking(Templates.find)
    create = blocking(Templates.create)
    update = blocking(Templates.update)
    delete = blocking(Templates.delete)
    list_labels = blocking(Templates.list_labels)
    add_label = blocking(Templates.add_label)
    remove_label = blocking(Templates.remove_label)
    list_annotations = blocking(Templates.list_annotations)
    add_annotation = blocking(Templates.add_annotation)
    remove_annotation = blocking(Templates.remove_annotation)
    render = blocking(Templates.render)
    instantiate = blocking(Templates.instantiate)
