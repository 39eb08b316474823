"""Pure manifest handling: parse a deployment object's YAML, identify, order and stamp objects.

No I/O. Objects are plain JSON-compatible dicts (what server-side apply sends); every function
returns new dicts and never mutates its input.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

import msgspec

from brokkr.common import yaml_guard

Manifest = dict[str, Any]

# Ownership stamps (D23), with the reference agent's keys so objects either agent applied read
# the same (agent.md §7.3). Users may not set these: stamping overwrites any value they carry.
#
# Annotation, as in the reference: the stack the object belongs to (its telemetry reads it).
STACK_ANNOTATION = "k8s.brokkr.io/stack"
# Annotation, not label: a SHA-256 hex digest (64 chars) exceeds the 63-char label value limit.
CHECKSUM_ANNOTATION = "k8s.brokkr.io/deployment-checksum"
# Annotation, as in the reference: which deployment object last wrote this object.
DEPLOYMENT_OBJECT_ID_ANNOTATION = "brokkr.io/deployment-object-id"
# Annotation, as in the reference: the object as the user wrote it, before stamping. The
# reference writes a debug dump; we write JSON, which tools can read back.
LAST_CONFIG_APPLIED_ANNOTATION = "k8s.brokkr.io/last-config-applied"
# Annotation, as in the reference: the owner check (pruning, §20.5) reads it.
OWNER_ID_ANNOTATION = "brokkr.io/owner-id"
# Label (ours), so the agent and `kubectl -l` can select a stack's objects server-side.
STACK_ID_LABEL = "brokkr.io/stack-id"
# Label on the agent's inventory ConfigMaps only: start-up lists them by owner server-side.
OWNER_ID_LABEL = "brokkr.io/owner-id"
# Label on what a work order created, as in the reference's BuildRuns: `kubectl -l` finds it.
WORK_ORDER_ID_LABEL = "brokkr.io/work-order-id"

DEFAULT_NAMESPACE = "default"

# Apply priority by kind (lower first): what others depend on goes first, and deletion uses the
# reverse. Kinds not listed rank REST_RANK; custom resources of CRDs defined in the same
# deployment object go last, because their kind only exists once the CRD is established.
_APPLY_RANK: dict[str, int] = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    # Cluster-wide policy and classes that admission of later objects consults.
    "PriorityClass": 2,
    "StorageClass": 2,
    "IngressClass": 2,
    "RuntimeClass": 2,
    "ResourceQuota": 2,
    "LimitRange": 2,
    "NetworkPolicy": 2,
    # Identities and permissions that workloads run as.
    "ServiceAccount": 3,
    "ClusterRole": 3,
    "Role": 3,
    "ClusterRoleBinding": 4,
    "RoleBinding": 4,
    # Configuration and storage that pods mount.
    "Secret": 5,
    "ConfigMap": 5,
    "PersistentVolume": 5,
    "PersistentVolumeClaim": 6,
    "Service": 7,
}
REST_RANK = 8
CUSTOM_RESOURCE_RANK = 9


class ManifestError(ValueError):
    """A deployment object's YAML cannot be turned into objects; the message names the document."""


class ObjectRef(msgspec.Struct, frozen=True, kw_only=True):
    """Identity of one applied object; ``namespace`` is "" for cluster-scoped kinds."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @property
    def group(self) -> str:
        group, _, _ = self.api_version.rpartition("/")
        return group

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two refs the same object: the version is not part of it (apps/v1 and
        apps/v1beta1 Deployments with one name are one object)."""
        return (self.group, self.kind, self.namespace, self.name)


def parse(yaml_content: str, limits: yaml_guard.YamlLimits) -> list[Manifest]:
    """Documents of a multi-document YAML stream, in order; empty documents are skipped.

    Whatever the broker accepted, a document over ``limits`` (a billion laughs would expand
    while being stamped) fails here, before any copy is made. Documents are numbered from 1 in
    error messages, counting empty ones.
    """
    try:
        documents = yaml_guard.load_all(yaml_content, limits)
    except yaml_guard.YamlLimitExceeded as exc:
        raise ManifestError(f"document {exc.document}: refused: {exc.reason}") from exc
    except yaml_guard.YamlError as exc:
        raise ManifestError(f"document {exc.document}: invalid YAML: {exc.reason}") from exc
    return [
        _checked(document, number)
        for number, document in enumerate(documents, start=1)
        if document is not None
    ]


def _checked(document: object, number: int) -> Manifest:
    where = f"document {number}"
    if not isinstance(document, dict):
        raise ManifestError(f"{where}: expected a mapping, got {type(document).__name__}")
    for field in ("apiVersion", "kind"):
        if not isinstance(document.get(field), str) or not document[field].strip():
            raise ManifestError(f"{where}: missing {field}")
    if document["kind"] == "List":
        raise ManifestError(f"{where}: kind List is not supported; use one document per object")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name.strip():
        # Server-side apply addresses objects by name, so generateName cannot work.
        raise ManifestError(f"{where} ({document['kind']}): missing metadata.name")
    return document


def identify(manifest: Mapping[str, Any], *, namespaced: bool) -> ObjectRef:
    """The object's identity; a namespaced kind without a namespace lands in ``default``."""
    metadata = manifest["metadata"]
    namespace = (metadata.get("namespace") or DEFAULT_NAMESPACE) if namespaced else ""
    return ObjectRef(
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        namespace=namespace,
        name=metadata["name"],
    )


def defined_kinds(manifests: Iterable[Mapping[str, Any]]) -> frozenset[tuple[str, str]]:
    """(group, kind) of every custom resource defined by the CRDs among ``manifests``."""
    kinds: set[tuple[str, str]] = set()
    for manifest in manifests:
        if manifest["kind"] != "CustomResourceDefinition":
            continue
        spec = manifest.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        if isinstance(group, str) and isinstance(kind, str):
            kinds.add((group, kind))
    return frozenset(kinds)


def apply_rank(group: str, kind: str, custom_kinds: frozenset[tuple[str, str]]) -> int:
    if (group, kind) in custom_kinds:
        return CUSTOM_RESOURCE_RANK
    return _APPLY_RANK.get(kind, REST_RANK)


def order_for_apply(manifests: Sequence[Manifest]) -> list[Manifest]:
    """Dependencies first (see the rank table); document order within a rank (stable sort)."""
    custom = defined_kinds(manifests)

    def rank(manifest: Manifest) -> int:
        group, _, _ = manifest["apiVersion"].rpartition("/")
        return apply_rank(group, manifest["kind"], custom)

    return sorted(manifests, key=rank)


def is_prerequisite(manifest: Mapping[str, Any]) -> bool:
    """A Namespace or CRD: applied before validation, because the dry run of the objects that go
    into it (or are of its kind) fails while it does not exist (agent.md §7.5)."""
    kind, api_version = manifest["kind"], manifest["apiVersion"]
    if kind == "Namespace":
        return bool(api_version == "v1")
    return bool(
        kind == "CustomResourceDefinition" and api_version.startswith("apiextensions.k8s.io/")
    )


def order_for_deletion(refs: Iterable[ObjectRef]) -> list[ObjectRef]:
    """Dependents first: the reverse of the apply ranks, deterministic within a rank."""
    return sorted(refs, key=lambda ref: (-apply_rank(ref.group, ref.kind, frozenset()), ref.key))


def stamp(
    manifest: Mapping[str, Any],
    *,
    stack_id: UUID,
    owner_id: UUID,
    deployment_object_id: UUID,
    checksum: str,
) -> Manifest:
    """A copy carrying the ownership label and annotations, merged into the user's own (D23)."""
    return _stamped(
        manifest,
        labels={STACK_ID_LABEL: str(stack_id)},
        annotations={
            STACK_ANNOTATION: str(stack_id),
            CHECKSUM_ANNOTATION: checksum,
            DEPLOYMENT_OBJECT_ID_ANNOTATION: str(deployment_object_id),
            OWNER_ID_ANNOTATION: str(owner_id),
        },
    )


def stamp_work_order(
    manifest: Mapping[str, Any], *, owner_id: UUID, work_order_id: UUID
) -> Manifest:
    """A copy carrying the work order's label and the owner annotation, merged into the user's
    own (D23). No stack stamps: no stack's prune may ever take a work order's objects."""
    return _stamped(
        manifest,
        labels={WORK_ORDER_ID_LABEL: str(work_order_id)},
        annotations={OWNER_ID_ANNOTATION: str(owner_id)},
    )


def _stamped(
    manifest: Mapping[str, Any], *, labels: dict[str, str], annotations: dict[str, str]
) -> Manifest:
    """A deep copy with ``labels`` and ``annotations`` merged over the user's own, and the
    manifest as given recorded as its last applied configuration."""
    original = dict(manifest)
    stamped: Manifest = copy.deepcopy(original)
    metadata: dict[str, Any] = stamped.setdefault("metadata", {})
    # `labels:` with no value parses as None; treat it as empty rather than failing.
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        **annotations,
        LAST_CONFIG_APPLIED_ANNOTATION: json.dumps(original, sort_keys=True, default=str),
    }
    return stamped


def is_owned_by(live: Mapping[str, Any], agent_id: UUID) -> bool:
    """The reference's owner check (§20.5): the owner-id annotation is exactly this agent's id;
    a missing, empty or non-UUID value is not ownership."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    owner = annotations.get(OWNER_ID_ANNOTATION)
    if not isinstance(owner, str):
        return False
    try:
        return UUID(owner) == agent_id
    except ValueError:
        return False
