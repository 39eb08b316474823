"""Server-side apply of one object, and reading live objects.

Apply is forced (``force=True``) as field manager ``brokkr-controller``: the deployment object
is the source of truth, so fields another manager took are taken back. A CRD is waited for
until Established (at most ``crd_establish_timeout``; then the deployment object fails with the
CRD's own condition, and the loop retries it later with backoff instead of blocking), then
discovery is refreshed, so its custom resources in the same deployment object apply at once
(flaw 9). A 404 makes discovery forget the kind, so a re-created CRD is found again.
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

_CRD_POLL_SECONDS = 0.2


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    ref: ObjectRef
    # A Namespace that did not exist before this apply: one the agent may later delete.
    created_namespace: bool = False
    # The apply changed the live object (created it, or corrected what had drifted): a no-op
    # server-side apply keeps the resourceVersion.
    changed: bool = True


class Objects:
    """Get, apply and delete objects by manifest or ``ObjectRef``, through discovery."""

    def __init__(
        self, client: KubeClient, discovery: Discovery, *, crd_establish_timeout: float
    ) -> None:
        self.client = client
        self.discovery = discovery
        self.crd_establish_timeout = crd_establish_timeout

    async def apply(self, manifest: Manifest, *, dry_run: bool = False) -> Applied:
        """With ``dry_run`` the API server validates and admits the object but stores nothing
        (``dryRun=All``): the reference agent's validation before apply (§20.4)."""
        info = await self.discovery.resolve(manifest["apiVersion"], manifest["kind"])
        ref = manifests.identify(manifest, namespaced=info.namespaced)
        before = None if dry_run else await self.get(ref)
        body = copy.deepcopy(manifest)
        if info.namespaced:
            # Where the URL says it goes (a manifest may omit its namespace).
            body["metadata"]["namespace"] = ref.namespace
        resource = self.discovery.resource(info)
        try:
            with translated():
                stored = await self.client.api.patch(
                    resource,
                    ref.name,
                    body,
                    namespace=ref.namespace or None,
                    patch_type=PatchType.APPLY,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    dry_run=dry_run,
                )
        except KubeError as exc:
            if exc.not_found:
                self.discovery.forget(manifest["apiVersion"], manifest["kind"])
            raise
        if dry_run:
            return Applied(ref=ref)
        if info.kind == "CustomResourceDefinition" and info.group == "apiextensions.k8s.io":
            await self._wait_established(ref)
            await self.discovery.refresh()
        after = stored.metadata.resourceVersion if stored.metadata is not None else None
        return Applied(
            ref=ref,
            created_namespace=before is None and ref.kind == "Namespace" and ref.group == "",
            changed=before is None or before["metadata"].get("resourceVersion") != after,
        )

    async def create(self, manifest: Manifest) -> dict[str, Any]:
        """Create (POST) a new object, e.g. a BuildRun: ``generateName`` gives every call its
        own object, where an apply would find and reuse the last one."""
        info = await self.discovery.resolve(manifest["apiVersion"], manifest["kind"])
        body = copy.deepcopy(manifest)
        if info.namespaced:
            # lightkube takes the URL's namespace from the object.
            body["metadata"]["namespace"] = (
                body["metadata"].get("namespace") or manifests.DEFAULT_NAMESPACE
            )
        resource = self.discovery.resource(info)
        with translated():
            created = await self.client.api.create(
                resource.from_dict(body), field_manager=FIELD_MANAGER
            )
        return dict(created)

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
        """Not retryable within the reconcile: the loop reports the failure and retries the
        deployment object with backoff, so a CRD that never settles blocks nothing."""
        deadline = time.monotonic() + self.crd_establish_timeout
        while True:
            live = await self.get(ref)
            if live is not None and _established(live):
                return
            if time.monotonic() >= deadline:
                raise KubeError(
                    f"CRDNotEstablished: CustomResourceDefinition {ref.name} not Established "
                    f"after {self.crd_establish_timeout:g} s{_why_not(live)}",
                    reason="CRDNotEstablished",
                )
            await asyncio.sleep(_CRD_POLL_SECONDS)


def _conditions(crd: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((crd.get("status") or {}).get("conditions") or [])


def _established(crd: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True" for c in _conditions(crd)
    )


def _why_not(crd: Mapping[str, Any] | None) -> str:
    """The API server's own reasons (e.g. NamesAccepted False: ...), for the failure event."""
    if crd is None:
        return " (it is gone)"
    reasons = [
        f"{c.get('type')} {c.get('status')}"
        + (f": {c.get('reason')}" if c.get("reason") else "")
        + (f" ({c.get('message')})" if c.get("message") else "")
        for c in _conditions(crd)
        if c.get("status") != "True"
    ]
    return f" ({'; '.join(reasons)})" if reasons else " (no condition reported yet)"
