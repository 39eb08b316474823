"""Which stack of this agent a cluster object belongs to (agent.md §10, fixing flaw 16).

The object itself when this agent applied it (it carries the stack annotation and this agent's
owner id); otherwise what its owner references lead to, controller first, up to ``MAX_DEPTH``
levels: a Pod through its ReplicaSet to the Deployment, a Job's Pod through the Job to the
CronJob. Another agent's stack object ends the search (its children are not ours). Answers,
"none" included, are cached per uid; a failed read that may pass (the API server briefly
unreachable) is not cached.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote
from uuid import UUID

from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.discovering import Discovery, ResourceInfo
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.telemetry import (
    MISS,
    Owner,
    OwnerCache,
    is_stack_object,
    own_stack,
    owner_references,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_DEPTH = 4


class StackOwners:
    def __init__(
        self, client: KubeClient, discovery: Discovery, agent_id: UUID, cache: OwnerCache
    ) -> None:
        self._client = client
        self._discovery = discovery
        self._agent_id = agent_id
        self._cache = cache

    async def of_object(self, obj: Obj) -> Owner | None:
        """For an object at hand (a pod from a watch)."""
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        cached = self._cache.get(uid) if uid else None
        if cached is not MISS:
            return cached
        try:
            owner = await self._resolve(obj, 0)
        except KubeError as exc:
            log.debug("cannot tell the stack of %s yet: %s", uid, exc)
            return None
        self._cache.put(uid, owner)
        return owner

    async def of_reference(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str
    ) -> Owner | None:
        """For an object known by reference (an event's involvedObject)."""
        try:
            return await self._of_reference(api_version, kind, namespace, name, uid, 0)
        except KubeError as exc:
            log.debug("cannot tell the stack of %s %s yet: %s", kind, name, exc)
            return None

    async def _of_reference(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str, depth: int
    ) -> Owner | None:
        cached = self._cache.get(uid)
        if cached is not MISS:
            return cached
        obj = await self._fetch(api_version, kind, namespace, name, uid)
        owner = None if obj is None else await self._resolve(obj, depth)
        self._cache.put(uid, owner)
        return owner

    async def _resolve(self, obj: Obj, depth: int) -> Owner | None:
        if is_stack_object(obj):
            return own_stack(obj, self._agent_id)
        if depth >= MAX_DEPTH:
            return None
        namespace = (obj.get("metadata") or {}).get("namespace") or None
        for ref in owner_references(obj):
            owner = await self._of_reference(
                str(ref["apiVersion"]),
                str(ref["kind"]),
                namespace,
                str(ref["name"]),
                str(ref["uid"]),
                depth + 1,
            )
            if owner is not None:
                return owner
        return None

    async def _fetch(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str
    ) -> Obj | None:
        """The object, or None when it is gone, was re-created (another uid) or its kind is
        not served; raises ``KubeError`` for a failure that may pass."""
        try:
            info = await self._discovery.resolve(api_version, kind)
            obj = await self._client.get_json(_path(info, namespace, name))
        except KubeError as exc:
            if exc.retryable:
                raise
            return None
        if not isinstance(obj, dict) or (obj.get("metadata") or {}).get("uid") != uid:
            return None
        return obj


def _path(info: ResourceInfo, namespace: str | None, name: str) -> str:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced and namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    return f"{base}/{info.plural}/{quote(name, safe='')}"
