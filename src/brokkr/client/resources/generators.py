"""/generators: the identities (CI pipelines) that own stacks."""

from __future__ import annotations

import builtins
from uuid import UUID

import msgspec

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http
from brokkr.common import wire


class Generators:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(self) -> builtins.list[wire.Generator]:
        """Every live generator, however many pages the broker serves them in."""
        return await self._http.collect("/api/v1/generators", builtins.list[wire.Generator])

    async def get(self, generator_id: UUID) -> wire.Generator:
        return await self._http.call("GET", f"/api/v1/generators/{generator_id}", wire.Generator)

    async def create(
        self, *, name: str, description: str | None = None
    ) -> wire.CreateGeneratorResponse:
        body = wire.NewGenerator(name=name, description=description)
        return await self._http.call(
            "POST", "/api/v1/generators", wire.CreateGeneratorResponse, json=body
        )

    async def update(
        self,
        generator_id: UUID,
        *,
        name: str | None = None,
        description: str | None | msgspec.UnsetType = msgspec.UNSET,
        is_active: bool | None = None,
    ) -> wire.Generator:
        body = wire.GeneratorUpdate(
            name=msgspec.UNSET if name is None else name,
            description=description,
            is_active=msgspec.UNSET if is_active is None else is_active,
        )
        return await self._http.call(
            "PUT", f"/api/v1/generators/{generator_id}", wire.Generator, json=body
        )

    async def delete(self, generator_id: UUID) -> None:
        await self._http.send("DELETE", f"/api/v1/generators/{generator_id}")

    async def rotate_pak(self, generator_id: UUID) -> wire.CreateGeneratorResponse:
        return await self._http.call(
            "POST", f"/api/v1/generators/{generator_id}/rotate-pak", wire.CreateGeneratorResponse
        )


class BlockingGenerators(Blocking[Generators]):
    list = blocking(Generators.list)
    get = blocking(Generators.get)
    create = blocking(Generators.create)
    update = blocking(Generators.update)
    delete = blocking(Generators.delete)
    rotate_pak = blocking(Generators.rotate_pak)
