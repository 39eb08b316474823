"""The seams between the agent's runtime loop and the code that touches the cluster.

``brokkr.agent.loop`` drives a ``Cluster`` (reachability) and a ``Reconcile`` callable (apply
deployment objects); ``brokkr.agent.kube`` and ``brokkr.agent.reconcile`` provide the real ones,
tests small stand-ins. Neither side imports the other: both import this module (and
``StartupError``, which either side raises when the agent cannot start). Work orders cross the
same way: the loop's work-order task calls a ``RunWorkOrder`` that ``brokkr.agent.work_orders``
provides; diagnostics too: a ``CollectDiagnostics`` from ``brokkr.agent.kube``; and health
reports: a ``CheckHealth`` (``brokkr.agent.kube.HealthChecker``); telemetry: a
``ShipTelemetry`` (``brokkr.agent.kube``) that offers frames to the channel's ``Uplink``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

import msgspec

from brokkr.agent.assessing import Assessment
from brokkr.agent.manifests import ObjectRef
from brokkr.common import wire


class StartupError(Exception):
    """The agent cannot start (wrong name, rejected PAK, broker never reachable, no kubeconfig)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one deployment object; the loop reports it as one DEPLOY event."""

    deployment_object_id: UUID
    success: bool
    # The error text for a failure (shown to users in the event), optional for a success.
    message: str | None = None
    # False when a success changed nothing in the cluster (a periodic re-apply without drift):
    # the loop does not report such a repetition (events report changes).
    changed: bool = True
    # What a successful apply left in the cluster, in apply order (namespaces resolved): the
    # objects whose health is checked and whose pods diagnostics describe.
    applied: tuple[ObjectRef, ...] = ()


class Cluster(Protocol):
    async def ping(self) -> bool:
        """True when the Kubernetes API answered (``GET /version``); never raises."""
        ...


class Reconcile(Protocol):
    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: UUID
    ) -> list[Outcome]:
        """Make the cluster match ``objects`` (the newest object of each stack, newest first)
        as agent ``agent_id``, the owner stamped on and pruned by; one outcome per object."""
        ...


class WorkOrderResult(msgspec.Struct, frozen=True, kw_only=True):
    """What running one work order came to; reported as its completion."""

    success: bool
    # The image digest of a build, a summary of a custom order, or the failure's reason.
    message: str | None = None
    # For a failure: whether another attempt may succeed (decided from the API server's code
    # and reason, never from the text); the broker retries with backoff while retries last.
    retryable: bool = False


class RunWorkOrder(Protocol):
    async def __call__(self, order: wire.WorkOrder, *, agent_id: UUID) -> WorkOrderResult:
        """Execute a claimed ``order`` as agent ``agent_id``; never raises."""
        ...


class CheckHealth(Protocol):
    async def __call__(self, applied: tuple[ObjectRef, ...]) -> Assessment:
        """How healthy the objects one deployment object ``applied`` are; never raises (an
        unreadable workload is ``unknown``)."""
        ...


class Diagnosis(msgspec.Struct, frozen=True, kw_only=True):
    """The three JSON documents of a diagnostic result (``wire.SubmitDiagnosticResult``):
    ``wire.PodStatus`` list, ``wire.DiagnosticEvent`` list, ``wire.LogTails``."""

    pod_statuses: str
    events: str
    log_tails: str | None = None


class CollectDiagnostics(Protocol):
    async def __call__(self, objects: Sequence[ObjectRef]) -> Diagnosis:
        """Describe the pods, events and logs of ``objects`` (what one deployment object
        applied); raises when the cluster cannot be read."""
        ...


class Uplink(Protocol):
    """The broker channel as telemetry sees it (``brokkr.agent.channel``)."""

    def offer(self, frame: bytes) -> bool:
        """Queue one telemetry frame (``wire.channel.frame``) for the broker without waiting;
        False when it was dropped (channel not connected, or its queue full)."""
        ...


class ShipTelemetry(Protocol):
    async def __call__(self, uplink: Uplink, *, agent_id: UUID, stop: asyncio.Event) -> None:
        """Watch the cluster and offer the Kubernetes events and opted-in pod log lines of the
        stacks agent ``agent_id`` applied to ``uplink`` until ``stop``; never raises (a failed
        watch is retried)."""
        ...
