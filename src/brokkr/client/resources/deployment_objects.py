"""/deployment-objects/{id}."""

from __future__ import annotations

from uuid import UUID

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http
from brokkr.common import wire


class DeploymentObjects:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def get(self, object_id: UUID) -> wire.DeploymentObject:
        return await self._http.call(
            "GET", f"/api/v1/deployment-objects/{object_id}", wire.DeploymentObject
        )


class BlockingDeploymentObjects(Blocking[DeploymentObjects]):
    get = blocking(DeploymentObjects.get)
