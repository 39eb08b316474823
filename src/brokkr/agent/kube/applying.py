"""Server-side apply of one object, and reading live objects.

Apply is forced (``force=True``) as field manager ``brokkr-controller``: the deployment object
is the source of truth, so fields another manager took are taken back. A CRD is waited for
until Established, then discovery is refreshed, so its custom resources in the same deployment
object apply at once (flaw 9).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from lightkube.types import CascadeType, PatchType

from brokkr.agent import manifests
from brokkr.agent.kube.client import FIELD_MANAGER, KubeClient
from brokkr.agent.kube.discovering import Discovery
from brokkr.agent.kube.errors import KubeError, translated
from brokkr.agent.manifests import Manifest, ObjectRef

CRD_ESTABLISH_TIMEOUT = 60.0
_CRD_POLL_SECONDS = 0.2


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    ref: ObjectRef
    # A Namespace that did not exist before this apply: one the agent may later delete.
    created_namespace: bool = False


class Objects:
    """Get, apply and delete objects by manifest or ``ObjectRef``, through discovery."""

    def __init__(self, client: KubeClient, discovery: Discovery) -> None:
        self.client = client
        self.discovery = discovery

    async def apply(self, manifest: Manifest, *, dry_run: bool = False) -> Applied:
        """With ``dry_run`` the API server validates and admits the object but stores nothing
        (``dryRun=All``): the reference agent's validation before apply (§20.4)."""
        info = await self.discovery.resolve(manifest["apiVersion"], manifest["kind"])
        ref = manifests.identify(manifest, namespaced=info.namespaced)
        created = (
            not dry_run
            and ref.kind == "Namespace"
            and ref.group == ""
            and await self.get(ref) is None
        )
        body = copy.deepcopy(manifest)
        if info.namespaced:
            # Where the URL says it goes (a manifest may omit its namespace).
            body["metadata"]["namespace"] = ref.namespace
        resource = self.discovery.resource(info)
        with translated():
            await self.client.api.patch(
                resource,
                ref.name,
                body,
                namespace=ref.namespace or None,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
                dry_run=dry_run,
            )
        if (
            not dry_run
            and info.kind == "CustomResourceDefinition"
            and info.group == "apiextensions.k8s.io"
        ):
            await self._wait_established(ref)
            await self.discovery.refresh()
        return Applied(ref=ref, created_namespace=created)

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The live object, or None when it (or its kind) does not exist."""
        try:
            info = await self.discovery.resolve(ref.api_version, ref.kind)
        except KubeError as exc:
            if exc.code is None:  # not served: e.g. its CRD is gone, and so are its objects
                return None
            raise
        try:
            with translated():
                live = await self.client.api.get(
                    self.discovery.resource(info), ref.name, namespace=ref.namespace or None
                )
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return dict(live)

    async def delete(self, ref: ObjectRef) -> None:
        """Delete in the background (dependents via the garbage collector); gone is fine."""
        info = await self.discovery.resolve(ref.api_version, ref.kind)
        try:
            with translated():
                await self.client.api.delete(
                    self.discovery.resource(info),
                    ref.name,
                    namespace=ref.namespace or None,
                    cascade=CascadeType.BACKGROUND,
                )
        except KubeError as exc:
            if not exc.not_found:
                raise

    async def _wait_established(self, ref: ObjectRef) -> None:
        deadline = time.monotonic() + CRD_ESTABLISH_TIMEOUT
        while True:
            live = await self.get(ref)
            if live is not None and _established(live):
                return
            if time.monotonic() >= deadline:
                raise KubeError(
                    f"CustomResourceDefinition {ref.name} not Established after "
                    f"{CRD_ESTABLISH_TIMEOUT:.0f} s",
                    reason="Timeout",
                    retryable=True,
                )
            await asyncio.sleep(_CRD_POLL_SECONDS)


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
