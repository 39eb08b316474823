"""Apply deployment objects to the cluster: the ``Reconcile`` the runtime loop calls.

Per deployment object (the loop passes the newest of each stack only): parse, stamp ownership by
the agent id the loop passes (D23), apply Namespaces and CRDs, validate everything else with a
server-side dry run (an invalid object fails the deployment object before anything else is
applied, and rolls back the namespaces it created), apply in dependency order, prune what the
stack's previous inventory held and this one does not, record the new inventory. A deletion
marker (D13) prunes the whole stack and drops its inventory. Nothing escapes as an exception:
every failure becomes a failed ``Outcome`` carrying the API server's reason; retryable API errors
(429, 5xx, timeouts) are first retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from brokkr.agent import backoff, inventory, manifests
from brokkr.agent.inventory import Inventory, InventoryError
from brokkr.agent.kube import KubeCluster, KubeError, prune
from brokkr.agent.manifests import ManifestError, ObjectRef
from brokkr.agent.outcomes import Outcome
from brokkr.agent.settings import Settings
from brokkr.common import wire

log = logging.getLogger(__name__)

# Attempts per deployment object within one reconcile, for retryable API errors; the runtime
# loop's own backoff takes over after that.
ATTEMPTS = 4
# Retries inside an attempt must stay short: the loop waits for the whole reconcile.
MAX_RETRY_DELAY = 10.0


class Reconciler:
    """A ``Reconcile``: every call re-applies what it is given, which is what corrects drift."""

    def __init__(self, settings: Settings, cluster: KubeCluster) -> None:
        self.settings = settings
        self.cluster = cluster

    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: UUID
    ) -> list[Outcome]:
        return [await self.reconcile_one(obj, agent_id) for obj in objects]

    async def reconcile_one(self, obj: wire.DeploymentObject, owner_id: UUID) -> Outcome:
        try:
            message = await self._with_retries(obj, owner_id)
        except (ManifestError, KubeError, InventoryError) as exc:
            log.warning("deployment object %s failed: %s", obj.id, exc)
            return Outcome(deployment_object_id=obj.id, success=False, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must fail one object, not the agent
            log.exception("deployment object %s failed unexpectedly", obj.id)
            return Outcome(deployment_object_id=obj.id, success=False, message=f"internal: {exc}")
        return Outcome(deployment_object_id=obj.id, success=True, message=message)

    async def _with_retries(self, obj: wire.DeploymentObject, owner_id: UUID) -> str:
        config = self.settings.agent
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if obj.is_deletion_marker:
                    return await self._delete_stack(obj, owner_id)
                return await self._apply(obj, owner_id)
            except KubeError as exc:
                if not exc.retryable or attempt == ATTEMPTS:
                    raise
                wait = backoff.delay(
                    attempt,
                    minimum=config.backoff_min,
                    maximum=min(config.backoff_max, MAX_RETRY_DELAY),
                )
                log.info("deployment object %s: %s; retrying in %.2f s", obj.id, exc, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _apply(self, obj: wire.DeploymentObject, owner_id: UUID) -> str:
        documents = manifests.parse(obj.yaml_content, self.settings.agent.yaml_limits)
        stamped = [
            manifests.stamp(
                document,
                stack_id=obj.stack_id,
                owner_id=owner_id,
                deployment_object_id=obj.id,
                checksum=obj.yaml_checksum,
            )
            for document in manifests.order_for_apply(documents)
        ]
        store = self.cluster.inventories
        previous = await store.read(owner_id=owner_id, stack_id=obj.stack_id)
        applied: list[ObjectRef] = []
        created: list[str] = []
        try:
            # Namespaces and CRDs for real first: the dry run of what goes into them needs them.
            prerequisites = [m for m in stamped if manifests.is_prerequisite(m)]
            for manifest in prerequisites:
                result = await self.cluster.objects.apply(manifest)
                applied.append(result.ref)
                if result.created_namespace:
                    created.append(result.ref.name)
            rest = [m for m in stamped if not manifests.is_prerequisite(m)]
            try:
                await self._validate(rest)
            except KubeError:
                await self._roll_back(created)
                applied = [ref for ref in applied if not _is_namespace_in(ref, created)]
                created = []
                raise
            for manifest in rest:
                result = await self.cluster.objects.apply(manifest)
                applied.append(result.ref)
        except KubeError:
            if applied:
                # Record the partial apply so a namespace created here stays known as ours
                # and a later prune still covers what the previous inventory held.
                kept = previous.objects if previous else ()
                await store.write(owner_id, self._record(obj, previous, applied, created, kept))
            raise
        pruned = await prune(self.cluster.objects, previous, applied, owner_id=owner_id)
        undeleted = [ref for ref, _ in pruned.failed]
        await store.write(owner_id, self._record(obj, previous, applied, created, undeleted))
        if pruned.failed:
            raise KubeError(_prune_failure(pruned.failed))
        return f"applied {len(applied)} object(s), pruned {len(pruned.deleted)}"

    async def _validate(self, stamped: list[manifests.Manifest]) -> None:
        """Dry-run every object (§20.4) so an invalid one leaves the cluster untouched; the error
        names every object that failed, not only the first, so one fix round is enough."""
        failures: list[KubeError] = []
        for manifest in stamped:
            try:
                await self.cluster.objects.apply(manifest, dry_run=True)
            except KubeError as exc:
                name = manifest["metadata"]["name"]
                failures.append(
                    KubeError(
                        f"Validation failed for {manifest['kind']} '{name}': {exc}",
                        code=exc.code,
                        reason=exc.reason,
                        retryable=exc.retryable,
                    )
                )
        if failures:
            raise KubeError(
                "\n".join(str(failure) for failure in failures),
                # Retrying helps only when no object is actually invalid.
                retryable=all(failure.retryable for failure in failures),
            )

    async def _roll_back(self, created: list[str]) -> None:
        """Delete the namespaces this attempt created (§20.4 namespace rollback); best effort,
        the validation failure is what gets reported."""
        for name in created:
            ref = ObjectRef(api_version="v1", kind="Namespace", namespace="", name=name)
            try:
                await self.cluster.objects.delete(ref)
            except KubeError as exc:
                log.warning("rolling back namespace %s failed: %s", name, exc)

    async def _delete_stack(self, obj: wire.DeploymentObject, owner_id: UUID) -> str:
        store = self.cluster.inventories
        previous = await store.read(owner_id=owner_id, stack_id=obj.stack_id)
        if previous is None:
            return "nothing to delete"
        pruned = await prune(self.cluster.objects, previous, (), owner_id=owner_id)
        if pruned.failed:
            undeleted = [ref for ref, _ in pruned.failed]
            await store.write(owner_id, self._record(obj, previous, [], [], undeleted))
            raise KubeError(_prune_failure(pruned.failed))
        await store.delete(owner_id=owner_id, stack_id=obj.stack_id)
        return f"deleted {len(pruned.deleted)} object(s)"

    @staticmethod
    def _record(
        obj: wire.DeploymentObject,
        previous: Inventory | None,
        applied: list[ObjectRef],
        created: list[str],
        undeleted: Iterable[ObjectRef],
    ) -> Inventory:
        return inventory.record(
            previous,
            stack_id=obj.stack_id,
            deployment_object_id=obj.id,
            checksum=obj.yaml_checksum,
            applied_at=datetime.now(UTC),
            applied=applied,
            newly_created_namespaces=created,
            undeleted=undeleted,
        )


def _is_namespace_in(ref: ObjectRef, names: list[str]) -> bool:
    return ref.kind == "Namespace" and ref.group == "" and ref.name in names


def _prune_failure(failed: tuple[tuple[ObjectRef, str], ...]) -> str:
    return "prune failed: " + "; ".join(
        f"{ref.kind} {ref.namespace}/{ref.name}: {why}"
        if ref.namespace
        else f"{ref.kind} {ref.name}: {why}"
        for ref, why in failed
    )
