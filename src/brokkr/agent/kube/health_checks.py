"""The real ``CheckHealth``: assess what one deployment object left in the cluster.

Each applied workload's pods are found by ``workloads.pods_of`` (its own selector, its real
namespace) and judged by ``brokkr.agent.assessing``; other kinds are not assessed. A workload
the API server will not describe is ``unknown`` with the API's message, never a crash.
"""

from __future__ import annotations

from brokkr.agent import assessing
from brokkr.agent.assessing import Assessment
from brokkr.agent.kube.client import KubeClient
from brokkr.agent.kube.errors import KubeError
from brokkr.agent.kube.workloads import has_pods, pods_of
from brokkr.agent.manifests import ObjectRef


class HealthChecker:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def __call__(self, applied: tuple[ObjectRef, ...]) -> Assessment:
        findings = []
        for ref in applied:
            if not has_pods(ref):
                continue
            try:
                found = await pods_of(self.client, ref)
            except KubeError as exc:
                findings.append(assessing.unreadable(ref.kind, ref.name, ref.namespace, str(exc)))
                continue
            if found.workload is None:
                findings.append(assessing.missing(ref.kind, ref.name, ref.namespace))
                continue
            findings.append(assessing.assess(ref.kind, found.workload, found.pods, found.children))
        return assessing.combine(findings)
