"""The agent's Kubernetes side; the only package that imports lightkube.

``connect(settings)`` returns a ``KubeCluster``: the ``Cluster`` the runtime loop pings, and
what ``brokkr.agent.reconcile`` applies, prunes and records inventories through.
``TelemetryShipper(cluster.client, settings.agent)`` ships Kubernetes events and pod logs.
"""

from __future__ import annotations

import logging

from brokkr.agent.kube.applying import Applied, Objects
from brokkr.agent.kube.client import KubeClient, KubeConfigError, load_config
from brokkr.agent.kube.discovering import Discovery
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.kube.health_checks import HealthChecker
from brokkr.agent.kube.inventories import Inventories
from brokkr.agent.kube.pruning import PruneResult, prune
from brokkr.agent.kube.telemetry_shipping import TelemetryShipper
from brokkr.agent.kube.workloads import WorkloadPods, has_pods, pods_of
from brokkr.agent.outcomes import StartupError
from brokkr.agent.settings import Settings

__all__ = [
    "Applied",
    "HealthChecker",
    "Inventories",
    "KubeCluster",
    "KubeError",
    "Objects",
    "PruneResult",
    "TelemetryShipper",
    "WorkloadPods",
    "connect",
    "has_pods",
    "pods_of",
    "prune",
]

log = logging.getLogger(__name__)


class KubeCluster:
    def __init__(
        self, client: KubeClient, *, inventory_namespace: str, crd_establish_timeout: float
    ) -> None:
        self.client = client
        self.discovery = Discovery(client)
        self.objects = Objects(client, self.discovery, crd_establish_timeout=crd_establish_timeout)
        self.inventories = Inventories(client, inventory_namespace)

    async def ping(self) -> bool:
        try:
            await self.client.get_json("/version")
        except KubeError as exc:
            log.debug("Kubernetes API ping failed: %s", exc)
            return False
        return True

    async def aclose(self) -> None:
        await self.client.aclose()


async def connect(settings: Settings) -> KubeCluster:
    """Raises ``StartupError`` when no Kubernetes configuration can be loaded."""
    try:
        config = load_config(settings.agent.kubeconfig_path)
    except KubeConfigError as exc:
        raise StartupError(str(exc)) from exc
    return KubeCluster(
        KubeClient(config),
        inventory_namespace=settings.agent.namespace,
        crd_establish_timeout=settings.agent.crd_establish_timeout,
    )
