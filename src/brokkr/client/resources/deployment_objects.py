"""/deployment-objects/{id} and its template provenance."""

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

    async def provenance(self, object_id: UUID) -> wire.TemplateProvenance:
        """The template version and parameters the object was rendered from (an extension of
        the broker); NotFound when the object was pushed as YAML, not instantiated."""
        return await self._http.call(
            "GET", f"/api/v1/deployment-objects/{object_id}/provenance", wire.TemplateProvenance
        )


class BlockingDeploymentObjects(Blocking[DeploymentObjects]):
    get = blocking(DeploymentObjects.get)
    provenance = blocking(DeploymentObjects.provenance)
