"""API discovery: which resource (plural) serves an (apiVersion, kind), and is it namespaced.

Read once, then again only on a miss (a CRD applied since, or a kind that truly is unknown) or
after a 404 disproved an entry (``forget``: a CRD deleted and re-created with another plural).
A group version whose discovery fails (a broken aggregated API such as metrics) is logged and
left out instead of failing every reconcile (flaw 8). Resources are lightkube *generic*
classes: objects travel as plain dicts, so no field the agent does not know is ever dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from lightkube.core.resource import ApiInfo, ResourceDef
from lightkube.generic_resource import GenericGlobalResource, GenericNamespacedResource

from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.errors import KubeError

log = logging.getLogger(__name__)

# Any, not the union of the two classes: lightkube's overloads are per scope, and the callers
# pass ``namespace=None`` for cluster-scoped kinds, which both scopes accept.
GenericResource = Any

_VERBS = ["delete", "get", "list", "patch", "post", "put", "global_list"]


class ResourceInfo(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class Discovery:
    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._resources: dict[tuple[str, str], ResourceInfo] = {}
        # Group versions whose discovery failed last time, with the error, for the message.
        self._broken: dict[str, str] = {}
        self._classes: dict[ResourceInfo, GenericResource] = {}
        # Concurrent misses share one refresh rather than each hammering discovery.
        self._lock = asyncio.Lock()

    async def resolve(self, api_version: str, kind: str) -> ResourceInfo:
        """Raises a non-retryable ``KubeError`` when the kind is not served."""
        key = (api_version, kind)
        if key not in self._resources:
            await self.refresh()
        info = self._resources.get(key)
        if info is not None:
            return info
        broken = self._broken.get(api_version)
        why = f" (discovery of {api_version} failed: {broken})" if broken else ""
        raise KubeError(f"UnknownKind: {kind} in {api_version} is not served by the cluster{why}")

    def forget(self, api_version: str, kind: str) -> None:
        """Drop one cached kind, so its next ``resolve`` asks the cluster again."""
        self._resources.pop((api_version, kind), None)

    def resource(self, info: ResourceInfo) -> GenericResource:
        """A generic lightkube class for ``info``; not put in lightkube's global registry, so it
        cannot clash with lightkube's typed models or another signature of the same kind."""
        if info not in self._classes:
            base = GenericNamespacedResource if info.namespaced else GenericGlobalResource
            api_info = ApiInfo(
                resource=ResourceDef(info.group, info.version, info.kind),
                plural=info.plural,
                verbs=_VERBS,
            )
            self._classes[info] = type(info.kind, (base,), {"_api_info": api_info})
        return self._classes[info]

    async def refresh(self) -> None:
        async with self._lock:
            core = await self._client.get_json("/api")
            groups = await self._client.get_json("/apis")
            group_versions = [str(v) for v in core.get("versions") or []]
            for group in groups.get("groups") or []:
                group_versions += [str(v["groupVersion"]) for v in group.get("versions") or []]
            documents = await asyncio.gather(
                *(self._group_version(gv) for gv in group_versions), return_exceptions=True
            )
            resources: dict[tuple[str, str], ResourceInfo] = {}
            broken: dict[str, str] = {}
            for gv, document in zip(group_versions, documents, strict=True):
                if isinstance(document, BaseException):
                    log.warning("discovery of %s failed, skipping it: %s", gv, document)
                    broken[gv] = str(document)
                    continue
                for info in _resources_of(gv, document):
                    resources[(gv, info.kind)] = info
            self._resources, self._broken = resources, broken

    async def _group_version(self, group_version: str) -> Any:
        prefix = "/api" if "/" not in group_version else "/apis"
        return await self._client.get_json(f"{prefix}/{group_version}")


def _resources_of(group_version: str, document: Any) -> list[ResourceInfo]:
    group, _, version = group_version.rpartition("/")
    return [
        ResourceInfo(
            group=group,
            version=version,
            kind=str(resource["kind"]),
            plural=str(resource["name"]),
            namespaced=bool(resource.get("namespaced")),
        )
        for resource in document.get("resources") or []
        # Subresources (deployments/status, pods/log) are not objects of their own.
        if "/" not in str(resource.get("name", ""))
    ]
