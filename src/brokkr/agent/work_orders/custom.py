"""``custom`` work orders: server-side-apply every document, then wait for every Job among them.

Objects carry the agent as owner and the work order's id (``manifests.stamp_work_order``), never
a stack's stamps: no stack prune takes them. A Job that fails (its ``Failed`` condition, e.g.
``BackoffLimitExceeded``) fails the order with the Job's reason; a Job deleted while waited for
fails it too. Without Jobs the order succeeds once everything is applied.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from brokkr.agent import manifests
from brokkr.agent.manifests import Manifest, ObjectRef
from brokkr.agent.work_orders import context
from brokkr.agent.work_orders.context import Context, WorkFailed
from brokkr.common import wire


async def run(ctx: Context, order: wire.WorkOrder, *, agent_id: UUID) -> str:
    documents = manifests.parse(order.yaml_content, ctx.settings.agent.yaml_limits)
    if not documents:
        raise WorkFailed("the work order's YAML holds no object")
    applied = await apply_all(ctx, documents, order=order, agent_id=agent_id)
    jobs = [ref for ref in applied if ref.kind == "Job" and ref.group == "batch"]
    await wait_for_jobs(ctx, jobs)
    summary = f"applied {len(applied)} object(s)"
    return f"{summary}; {len(jobs)} Job(s) succeeded" if jobs else summary


async def apply_all(
    ctx: Context, documents: list[Manifest], *, order: wire.WorkOrder, agent_id: UUID
) -> list[ObjectRef]:
    """Apply in dependency order (namespaces and CRDs first), as stacks are."""
    applied = []
    for document in manifests.order_for_apply(documents):
        stamped = manifests.stamp_work_order(document, owner_id=agent_id, work_order_id=order.id)
        result = await ctx.cluster.objects.apply(stamped)
        applied.append(result.ref)
    return applied


async def wait_for_jobs(ctx: Context, jobs: list[ObjectRef]) -> None:
    """Until every Job completed; the first failed one fails the order at once."""
    waiting = list(jobs)
    while waiting:
        for ref in list(waiting):
            live = await ctx.cluster.objects.get(ref)
            if live is None:
                raise WorkFailed(f"Job {ref.namespace}/{ref.name} was deleted before it finished")
            if context.is_true(context.condition(live, "Complete")):
                waiting.remove(ref)
                continue
            failed = context.condition(live, "Failed")
            if failed is not None and context.is_true(failed):
                reason = failed.get("reason") or "Failed"
                message = failed.get("message") or "no message"
                raise WorkFailed(f"Job {ref.namespace}/{ref.name} failed: {reason}: {message}")
        if waiting:
            await asyncio.sleep(ctx.check_interval)
