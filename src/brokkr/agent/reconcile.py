"""Apply deployment objects to the cluster: the ``Reconcile`` the runtime loop calls.

Per deployment object (the loop passes the newest of each stack only; stacks run concurrently,
at most ``max_concurrent_reconciles`` at once): parse, stamp ownership by the agent id the loop
passes (D23), apply Namespaces and CRDs, validate everything else with a server-side dry run (an
invalid object fails the deployment object before anything else is applied), apply in dependency
order, prune what the stack's previous inventory held and this one does not, record the new
inventory. A deletion marker (D13) prunes the whole stack and drops its inventory. Nothing
escapes as an exception: every failure becomes a failed ``Outcome`` carrying the API server's
reason; retryable API errors (429, 5xx, timeouts) are first retried with backoff.

A namespace the agent created for a stack stays when a later step fails: it is recorded in the
stack's inventory at once and deleted only with the stack (deletion marker), so a failing deploy
never deletes it and re-creates it on the next attempt while it is still terminating.
A success says whether it changed the cluster (new deployment object, drift corrected, objects
pruned); an unchanged periodic re-apply is ``changed=False``, which the loop does not report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

import msgspec

from brokkr.agent import backoff, inventory, manifests
from brokkr.agent.inventory import Inventory, InventoryError
from brokkr.agent.kube import Applied, KubeCluster, KubeError, prune
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


class _Done(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    changed: bool
    applied: tuple[ObjectRef, ...] = ()


class Reconciler:
    """A ``Reconcile``: every call re-applies what it is given, which is what corrects drift."""

    def __init__(self, settings: Settings, cluster: KubeCluster) -> None:
        self.settings = settings
        self.cluster = cluster
        # Shared by every call (incremental and full polls), so the bound holds agent-wide.
        self._slots = asyncio.Semaphore(settings.agent.max_concurrent_reconciles)
        # The deployment object each stack last applied completely in this process: after a
        # partial (failed) apply, what the retry creates is the deployment, not drift.
        self._settled: dict[UUID, UUID] = {}

    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: UUID
    ) -> list[Outcome]:
        return list(await asyncio.gather(*(self._bounded(obj, agent_id) for obj in objects)))

    async def _bounded(self, obj: wire.DeploymentObject, owner_id: UUID) -> Outcome:
        async with self._slots:
            return await self.reconcile_one(obj, owner_id)

    async def reconcile_one(self, obj: wire.DeploymentObject, owner_id: UUID) -> Outcome:
        try:
            done = await self._with_retries(obj, owner_id)
        except (ManifestError, KubeError, InventoryError) as exc:
            log.warning("stack %s version %s failed: %s", obj.stack_id, obj.sequence_id, exc)
            return Outcome(deployment_object_id=obj.id, success=False, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must fail one object, not the agent
            log.exception("deployment object %s failed unexpectedly", obj.id)
            return Outcome(deployment_object_id=obj.id, success=False, message=f"internal: {exc}")
        return Outcome(
            deployment_object_id=obj.id,
            success=True,
            message=done.message,
            changed=done.changed,
            applied=done.applied,
        )

    async def _with_retries(self, obj: wire.DeploymentObject, owner_id: UUID) -> _Done:
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
                log.warning(
                    "stack %s version %s: %s; retrying in %.2f s",
                    obj.stack_id,
                    obj.sequence_id,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _apply(self, obj: wire.DeploymentObject, owner_id: UUID) -> _Done:
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
        results: list[Applied] = []
        applied: list[ObjectRef] = []
        created: list[str] = []
        try:
            # Namespaces and CRDs for real first: the dry run of what goes into them needs them.
            prerequisites = [m for m in stamped if manifests.is_prerequisite(m)]
            for manifest in prerequisites:
                result = await self.cluster.objects.apply(manifest)
                results.append(result)
                applied.append(result.ref)
                if result.created_namespace:
                    created.append(result.ref.name)
            rest = [m for m in stamped if not manifests.is_prerequisite(m)]
            await self._validate(rest)
            for manifest in rest:
                result = await self.cluster.objects.apply(manifest)
                results.append(result)
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
        story = self._story(obj, previous, results, len(pruned.deleted))
        return msgspec.structs.replace(story, applied=tuple(applied))

    def _story(
        self,
        obj: wire.DeploymentObject,
        previous: Inventory | None,
        results: list[Applied],
        pruned: int,
    ) -> _Done:
        """What this apply did, logged at INFO and reported when it changed anything."""
        stack = f"stack {obj.stack_id} version {obj.sequence_id}"
        message = f"applied {len(results)} object(s), pruned {pruned}"
        fixed = [_describe(result.ref) for result in results if result.changed]
        settled = self._settled.get(obj.stack_id) == obj.id
        self._settled[obj.stack_id] = obj.id
        if previous is None or previous.deployment_object_id != obj.id or (fixed and not settled):
            log.info("%s: %s", stack, message)
            return _Done(message=message, changed=True)
        if fixed:
            log.info("%s: drift fixed in %s", stack, ", ".join(fixed))
            return _Done(message=f"drift corrected: {', '.join(fixed)}", changed=True)
        if pruned:
            log.info("%s: pruned %d leftover object(s)", stack, pruned)
            return _Done(message=message, changed=True)
        log.debug("%s: unchanged (%d object(s))", stack, len(results))
        return _Done(message=message, changed=False)

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

    async def _delete_stack(self, obj: wire.DeploymentObject, owner_id: UUID) -> _Done:
        store = self.cluster.inventories
        previous = await store.read(owner_id=owner_id, stack_id=obj.stack_id)
        if previous is None:
            return _Done(message="nothing to delete", changed=False)
        pruned = await prune(self.cluster.objects, previous, (), owner_id=owner_id)
        if pruned.failed:
            undeleted = [ref for ref, _ in pruned.failed]
            await store.write(owner_id, self._record(obj, previous, [], [], undeleted))
            raise KubeError(_prune_failure(pruned.failed))
        await store.delete(owner_id=owner_id, stack_id=obj.stack_id)
        self._settled.pop(obj.stack_id, None)
        log.info("stack %s deleted: pruned %d object(s)", obj.stack_id, len(pruned.deleted))
        return _Done(message=f"deleted {len(pruned.deleted)} object(s)", changed=True)

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


def _describe(ref: ObjectRef) -> str:
    return f"{ref.kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{ref.kind} {ref.name}"


def _prune_failure(failed: tuple[tuple[ObjectRef, str], ...]) -> str:
    return "prune failed: " + "; ".join(f"{_describe(ref)}: {why}" for ref, why in failed)
