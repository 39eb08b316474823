"""Shipwright's ``Build`` and ``BuildRun`` CRDs (shipwright.io/v1beta1, status subresources), for
build work orders. Nothing reconciles them: tests set a BuildRun's status as Shipwright's
controller would (``Succeeded`` condition, ``output.digest``, ``failureDetails``)."""

from __future__ import annotations

from typing import Any

BUILDS_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: builds.shipwright.io}
spec:
  group: shipwright.io
  scope: Namespaced
  names: {plural: builds, singular: build, kind: Build, listKind: BuildList}
  versions:
    - name: v1beta1
      served: true
      storage: true
      subresources: {status: {}}
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
BUILDRUNS_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: buildruns.shipwright.io}
spec:
  group: shipwright.io
  scope: Namespaced
  names: {plural: buildruns, singular: buildrun, kind: BuildRun, listKind: BuildRunList}
  versions:
    - name: v1beta1
      served: true
      storage: true
      subresources: {status: {}}
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
BUILD = """
apiVersion: shipwright.io/v1beta1
kind: Build
metadata: {name: app, namespace: builds}
spec:
  source: {type: Git, git: {url: "https://github.com/shipwright-io/sample-go"}}
  strategy: {name: buildah, kind: ClusterBuildStrategy}
  output: {image: registry.example.com/app:latest}
"""
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: builds}\n"


def succeeded(digest: str) -> dict[str, Any]:
    """A BuildRun's status once its image is pushed."""
    return {
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
        "output": {"digest": digest},
    }


def failed(reason: str, message: str) -> dict[str, Any]:
    return {
        "conditions": [
            {"type": "Succeeded", "status": "False", "reason": reason, "message": message}
        ],
        "failureDetails": {"reason": reason, "message": message},
    }
