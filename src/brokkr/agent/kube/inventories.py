"""The per-agent, per-stack inventory ConfigMaps in ``settings.agent.namespace``.

They are what survives a restart: the next prune of a stack reads what the last apply recorded.
The namespace is created on first write when missing, and again when someone deleted it under the
running agent: the 404 (or 403/409 while it terminates) of a write disproves the cached
"namespace ready", so the write re-creates it once instead of failing every later apply.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType

from brokkr.agent import inventory, manifests
from brokkr.agent.inventory import Inventory
from brokkr.agent.kube.client import FIELD_MANAGER, KubeClient
from brokkr.agent.kube.errors import KubeError, translated


class Inventories:
    def __init__(self, client: KubeClient, namespace: str) -> None:
        self._client = client
        self.namespace = namespace
        self._namespace_ready = False

    async def read(self, *, owner_id: UUID, stack_id: UUID) -> Inventory | None:
        """None when the stack has no inventory; raises ``InventoryError`` when unreadable."""
        name = inventory.configmap_name(owner_id=owner_id, stack_id=stack_id)
        try:
            with translated():
                found = await self._client.api.get(ConfigMap, name, namespace=self.namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return inventory.from_configmap_data(found.data or {})

    async def list(self, *, owner_id: UUID) -> list[Inventory]:
        """Every inventory of this agent (unreadable ones are left out)."""
        found: list[Inventory] = []
        with translated():
            async for item in self._client.api.list(
                ConfigMap,
                namespace=self.namespace,
                labels={manifests.OWNER_ID_LABEL: str(owner_id)},
            ):
                try:
                    found.append(inventory.from_configmap_data(item.data or {}))
                except inventory.InventoryError:
                    continue
        return found

    async def write(self, owner_id: UUID, stored: Inventory) -> None:
        await self._ensure_namespace()
        try:
            await self._write(owner_id, stored)
        except KubeError as exc:
            if not _namespace_missing(exc):
                raise
            self._namespace_ready = False
            await self._ensure_namespace()
            await self._write(owner_id, stored)

    async def _write(self, owner_id: UUID, stored: Inventory) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": inventory.configmap_name(owner_id=owner_id, stack_id=stored.stack_id),
                "namespace": self.namespace,
                "labels": inventory.configmap_labels(owner_id=owner_id, stack_id=stored.stack_id),
            },
            "data": inventory.to_configmap_data(stored),
        }
        with translated():
            await self._client.api.patch(
                ConfigMap,
                body["metadata"]["name"],
                body,
                namespace=self.namespace,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )

    async def delete(self, *, owner_id: UUID, stack_id: UUID) -> None:
        name = inventory.configmap_name(owner_id=owner_id, stack_id=stack_id)
        try:
            with translated():
                await self._client.api.delete(ConfigMap, name, namespace=self.namespace)
        except KubeError as exc:
            if not exc.not_found:
                raise

    async def _ensure_namespace(self) -> None:
        if self._namespace_ready:
            return
        try:
            with translated():
                found = await self._client.api.get(Namespace, self.namespace)
        except KubeError as exc:
            if not exc.not_found:
                raise
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
            with translated():
                await self._client.api.patch(
                    Namespace,
                    self.namespace,
                    body,
                    patch_type=PatchType.APPLY,
                    field_manager=FIELD_MANAGER,
                )
        else:
            if found.metadata is not None and found.metadata.deletionTimestamp is not None:
                # Nothing can be written into it until it is gone; the reconcile retries.
                raise KubeError(
                    f"namespace {self.namespace} is being terminated; the inventory waits for it",
                    code=409,
                    reason="Conflict",
                    retryable=True,
                )
        self._namespace_ready = True


def _namespace_missing(exc: KubeError) -> bool:
    """What a write answers when the namespace is gone (404) or terminating (403/409)."""
    return exc.not_found or exc.code in (403, 409)
