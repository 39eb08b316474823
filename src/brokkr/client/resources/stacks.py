"""/stacks, their labels, annotations and deployment objects."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import msgspec

from brokkr.client import streams
from brokkr.client.blocking import Blocking, blocking, streaming
from brokkr.client.http import Http, segment
from brokkr.common import wire


class Stacks:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(self, *, generator_id: UUID | None = None) -> builtins.list[wire.Stack]:
        """Every live stack the caller may see, however many pages the broker serves them in."""
        return await self._http.collect(
            "/api/v1/stacks", builtins.list[wire.Stack], params={"generator_id": generator_id}
        )

    async def get(self, stack_id: UUID) -> wire.Stack:
        return await self._http.call("GET", f"/api/v1/stacks/{stack_id}", wire.Stack)

    async def find(self, name: str) -> wire.Stack | None:
        """The live stack with this name among those the caller may list."""
        return next((stack for stack in await self.list() if stack.name == name), None)

    async def create(
        self, *, name: str, description: str | None = None, generator_id: UUID | None = None
    ) -> wire.Stack:
        body = wire.NewStack(
            name=name,
            description=description,
            generator_id=msgspec.UNSET if generator_id is None else generator_id,
        )
        return await self._http.call("POST", "/api/v1/stacks", wire.Stack, json=body)

    async def update(
        self,
        stack_id: UUID,
        *,
        name: str | None = None,
        description: str | None | msgspec.UnsetType = msgspec.UNSET,
    ) -> wire.Stack:
        body = wire.StackUpdate(
            name=msgspec.UNSET if name is None else name, description=description
        )
        return await self._http.call("PUT", f"/api/v1/stacks/{stack_id}", wire.Stack, json=body)

    async def delete(self, stack_id: UUID) -> None:
        await self._http.send("DELETE", f"/api/v1/stacks/{stack_id}")

    async def list_labels(self, stack_id: UUID) -> builtins.list[wire.StackLabel]:
        return await self._http.call(
            "GET", f"/api/v1/stacks/{stack_id}/labels", builtins.list[wire.StackLabel]
        )

    async def add_label(self, stack_id: UUID, label: str) -> wire.StackLabel:
        return await self._http.call(
            "POST",
            f"/api/v1/stacks/{stack_id}/labels",
            wire.StackLabel,
            json=wire.NewStackLabel(label=label, stack_id=stack_id),
        )

    async def remove_label(self, stack_id: UUID, label: str) -> None:
        await self._http.send("DELETE", f"/api/v1/stacks/{stack_id}/labels/{segment(label)}")

    async def list_annotations(self, stack_id: UUID) -> builtins.list[wire.StackAnnotation]:
        return await self._http.call(
            "GET", f"/api/v1/stacks/{stack_id}/annotations", builtins.list[wire.StackAnnotation]
        )

    async def add_annotation(self, stack_id: UUID, key: str, value: str) -> wire.StackAnnotation:
        return await self._http.call(
            "POST",
            f"/api/v1/stacks/{stack_id}/annotations",
            wire.StackAnnotation,
            json=wire.NewStackAnnotation(key=key, value=value, stack_id=stack_id),
        )

    async def remove_annotation(self, stack_id: UUID, key: str) -> None:
        await self._http.send("DELETE", f"/api/v1/stacks/{stack_id}/annotations/{segment(key)}")

    async def list_deployment_objects(
        self, stack_id: UUID, *, limit: int = 100
    ) -> builtins.list[wire.DeploymentObject]:
        return await self._http.call(
            "GET",
            f"/api/v1/stacks/{stack_id}/deployment-objects",
            builtins.list[wire.DeploymentObject],
            params={"limit": limit},
        )

    async def deploy(
        self, stack_id: UUID, yaml_content: str, *, is_deletion_marker: bool = False
    ) -> wire.DeploymentObject:
        """Add a deployment object (multi-document YAML) to the stack."""
        body = wire.CreateDeploymentObjectRequest(
            yaml_content=yaml_content, is_deletion_marker=is_deletion_marker
        )
        return await self._http.call(
            "POST",
            f"/api/v1/stacks/{stack_id}/deployment-objects",
            wire.DeploymentObject,
            json=body,
        )

    async def agents(self, stack_id: UUID) -> builtins.list[wire.Agent]:
        """The live agents the stack reaches: those expected to apply its objects."""
        return await self._http.call(
            "GET", f"/api/v1/stacks/{stack_id}/agents", builtins.list[wire.Agent]
        )

    async def events(
        self, stack_id: UUID, *, since: datetime | None = None, limit: int | None = None
    ) -> wire.K8sEventHistoryResponse:
        """The stack's recent Kubernetes events, newest first (the broker keeps hours only)."""
        return await self._http.call(
            "GET",
            f"/api/v1/stacks/{stack_id}/events",
            wire.K8sEventHistoryResponse,
            params={"since": since, "limit": limit},
        )

    async def logs(
        self, stack_id: UUID, *, since: datetime | None = None, limit: int | None = None
    ) -> wire.PodLogHistoryResponse:
        """The stack's recent pod log lines, newest first (the broker keeps hours only)."""
        return await self._http.call(
            "GET",
            f"/api/v1/stacks/{stack_id}/logs",
            wire.PodLogHistoryResponse,
            params={"since": since, "limit": limit},
        )

    def live(self, stack_id: UUID) -> AsyncIterator[streams.LiveFrame]:
        """The stack's new events, log lines and gaps as they arrive, until the broker ends the
        stream (a deleted stack raises NotFound, a revoked PAK Unauthorized)."""
        return streams.frames(self._http, f"/api/v1/stacks/{stack_id}/live")


class BlockingStacks(Blocking[Stacks]):
    list = blocking(Stacks.list)
    get = blocking(Stacks.get)
    find = blocking(Stacks.find)
    create = blocking(Stacks.create)
    update = blocking(Stacks.update)
    delete = blocking(Stacks.delete)
    list_labels = blocking(Stacks.list_labels)
    add_label = blocking(Stacks.add_label)
    remove_label = blocking(Stacks.remove_label)
    list_annotations = blocking(Stacks.list_annotations)
    add_annotation = blocking(Stacks.add_annotation)
    remove_annotation = blocking(Stacks.remove_annotation)
    list_deployment_objects = blocking(Stacks.list_deployment_objects)
    deploy = blocking(Stacks.deploy)
    agents = blocking(Stacks.agents)
    events = blocking(Stacks.events)
    logs = blocking(Stacks.logs)
    live = streaming(Stacks.live)
