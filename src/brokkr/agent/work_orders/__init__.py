"""Run claimed work orders: the ``RunWorkOrder`` the runtime loop's work-order task calls.

One module per work type (``custom``, ``build``); an unknown type fails permanently, naming it.
Every run is bounded by ``work_order_timeout``. Whether a failure is worth another attempt is
decided from what the API server answered, never from error text: 429, 5xx, timeouts and the
run's own deadline are retryable; an invalid or forbidden object, a malformed order and a Job or
BuildRun that failed are permanent. Nothing escapes as an exception.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from uuid import UUID

from brokkr.agent.kube import KubeCluster, KubeError
from brokkr.agent.manifests import ManifestError
from brokkr.agent.outcomes import WorkOrderResult
from brokkr.agent.settings import Settings
from brokkr.agent.work_orders import build, custom
from brokkr.agent.work_orders.context import Context, WorkFailed
from brokkr.common import wire

__all__ = ["Executor"]

log = logging.getLogger(__name__)


class Run(Protocol):
    async def __call__(
        self, ctx: Context, order: wire.WorkOrder, *, agent_id: UUID
    ) -> str | None: ...


RUNS: dict[str, Run] = {
    "build": build.run,
    "custom": custom.run,
}


class Executor:
    def __init__(self, settings: Settings, cluster: KubeCluster) -> None:
        self.context = Context(settings=settings, cluster=cluster)

    async def __call__(self, order: wire.WorkOrder, *, agent_id: UUID) -> WorkOrderResult:
        run = RUNS.get(order.work_type)
        if run is None:
            known = ", ".join(sorted(RUNS))
            return _failed(f"unknown work type {order.work_type!r} (this agent runs {known})")
        timeout = self.context.settings.agent.work_order_timeout
        try:
            async with asyncio.timeout(timeout):
                message = await run(self.context, order, agent_id=agent_id)
        except TimeoutError:
            return _failed(f"timed out after {timeout:g} s", retryable=True)
        except KubeError as exc:
            return _failed(str(exc), retryable=exc.retryable)
        except (ManifestError, WorkFailed) as exc:
            return _failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must fail one order, not the agent
            log.exception("work order %s failed unexpectedly", order.id)
            return _failed(f"internal: {exc}")
        return WorkOrderResult(success=True, message=message)


def _failed(message: str, *, retryable: bool = False) -> WorkOrderResult:
    return WorkOrderResult(success=False, message=message, retryable=retryable)
