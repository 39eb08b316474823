"""``build`` work orders: a Shipwright ``Build`` and a new ``BuildRun`` for every attempt.

The order's documents are applied as a ``custom`` order's are (exactly one of them must be a
``shipwright.io`` Build); then a BuildRun of that Build is created under a generated name, so a
retry never collides with the BuildRun of an earlier attempt (the reference's fixed name made
every retry fail with AlreadyExists, flaw 13). The result is the image digest the BuildRun's
status reports; a failed BuildRun fails the order with its ``failureDetails`` reason.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from brokkr.agent import manifests
from brokkr.agent.manifests import Manifest, ObjectRef
from brokkr.agent.work_orders import context, custom
from brokkr.agent.work_orders.context import Context, WorkFailed
from brokkr.common import wire

SHIPWRIGHT_GROUP = "shipwright.io"
# The version whose BuildRun names its Build as ``spec.build.name`` (v1alpha1 differs).
BUILDRUN_API_VERSION = "shipwright.io/v1beta1"
BUILD_LABEL = "shipwright.io/build"
# Room for the generated suffix and the order id within a 63-character name.
_BUILD_NAME_PREFIX = 40


async def run(ctx: Context, order: wire.WorkOrder, *, agent_id: UUID) -> str | None:
    documents = manifests.parse(order.yaml_content, ctx.settings.agent.yaml_limits)
    builds = [document for document in documents if _is_build(document)]
    if len(builds) != 1:
        raise WorkFailed(
            f"a build work order needs exactly one Shipwright Build ({SHIPWRIGHT_GROUP}/*), "
            f"found {len(builds)}"
        )
    await custom.apply_all(ctx, documents, order=order, agent_id=agent_id)
    metadata = builds[0]["metadata"]
    name = metadata["name"]
    namespace = metadata.get("namespace") or manifests.DEFAULT_NAMESPACE
    created = await ctx.cluster.objects.create(
        _buildrun(name, namespace, order=order, agent_id=agent_id)
    )
    ref = ObjectRef(
        api_version=BUILDRUN_API_VERSION,
        kind="BuildRun",
        namespace=namespace,
        name=created["metadata"]["name"],
    )
    return await _wait(ctx, ref)


def _is_build(document: Manifest) -> bool:
    group, _, _ = str(document["apiVersion"]).rpartition("/")
    return bool(document["kind"] == "Build" and group == SHIPWRIGHT_GROUP)


def _buildrun(build: str, namespace: str, *, order: wire.WorkOrder, agent_id: UUID) -> Manifest:
    manifest: Manifest = {
        "apiVersion": BUILDRUN_API_VERSION,
        "kind": "BuildRun",
        "metadata": {
            "generateName": f"{build[:_BUILD_NAME_PREFIX]}-{str(order.id)[:8]}-",
            "namespace": namespace,
            "labels": {BUILD_LABEL: build},
        },
        "spec": {"build": {"name": build}},
    }
    return manifests.stamp_work_order(manifest, owner_id=agent_id, work_order_id=order.id)


async def _wait(ctx: Context, ref: ObjectRef) -> str | None:
    where = f"BuildRun {ref.namespace}/{ref.name}"
    while True:
        live = await ctx.cluster.objects.get(ref)
        if live is None:
            raise WorkFailed(f"{where} was deleted before it finished")
        succeeded = context.condition(live, "Succeeded")
        if context.is_true(succeeded):
            digest = ((live.get("status") or {}).get("output") or {}).get("digest")
            return str(digest) if digest else None
        if succeeded is not None and succeeded.get("status") == "False":
            details = (live.get("status") or {}).get("failureDetails") or {}
            reason = details.get("reason") or succeeded.get("reason") or "Failed"
            message = details.get("message") or succeeded.get("message") or "no message"
            raise WorkFailed(f"{where} failed: {reason}: {message}")
        await asyncio.sleep(ctx.check_interval)
