"""The resource types the fake serves: a built-in set and the ones CustomResourceDefinitions add."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = {"status": ("get", "patch", "update"), "log": ("get",)}


@dataclass(frozen=True)
class ResourceType:
    """One resource of one group version, as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    generation: bool = False
    delete_returns_object: bool = False
    custom: bool = False
    list_kind_name: str = ""
    singular_name: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.singular_name or self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.list_kind_name or f"{self.kind}List"

    @property
    def storage_key(self) -> str:
        """Objects are stored once per group and resource, whatever version served them."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``configmaps``: how errors name the resource."""
        return self.storage_key

    @property
    def qualified_kind(self) -> str:
        """``Deployment.apps`` / ``ConfigMap``: how validation errors name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status_subresource(self) -> bool:
        return "status" in self.subresources

    def discovery_entries(self) -> list[Obj]:
        """The APIResource entries (the resource and its subresources) of an APIResourceList."""
        entry: Obj = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(STANDARD_VERBS),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        digest = hashlib.sha256(f"{self.group_version}/{self.plural}".encode()).digest()
        entry["storageVersionHash"] = base64.b64encode(digest[:8]).decode()
        entries = [entry]
        for sub in self.subresources:
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(SUBRESOURCE_VERBS[sub]),
                }
            )
        return entries


def _rt(
    gv: str,
    kind: str,
    plural: str,
    *,
    cluster: bool = False,
    short: str = "",
    cats: str = "",
    subs: str = "",
    generation: bool = False,
    returns_object: bool = False,
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=not cluster,
        short_names=tuple(short.split()),
        categories=tuple(cats.split()),
        subresources=tuple(subs.split()),
        generation=generation,
        delete_returns_object=returns_object,
    )


BUILTIN: tuple[ResourceType, ...] = (
    _rt("v1", "ConfigMap", "configmaps", short="cm"),
    _rt("v1", "Event", "events", short="ev"),
    _rt("v1", "LimitRange", "limitranges", short="limits"),
    _rt(
        "v1",
        "Namespace",
        "namespaces",
        cluster=True,
        short="ns",
        subs="status",
        returns_object=True,
    ),
    _rt("v1", "Node", "nodes", cluster=True, short="no", subs="status"),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short="pvc", subs="status"),
    _rt("v1", "PersistentVolume", "persistentvolumes", cluster=True, short="pv", subs="status"),
    _rt("v1", "Pod", "pods", short="po", cats="all", subs="status log", returns_object=True),
    _rt("v1", "ResourceQuota", "resourcequotas", short="quota", subs="status"),
    _rt("v1", "Secret", "secrets"),
    _rt("v1", "ServiceAccount", "serviceaccounts", short="sa", returns_object=True),
    _rt("v1", "Service", "services", short="svc", cats="all", subs="status"),
    _rt(
        "apps/v1", "DaemonSet", "daemonsets", short="ds", cats="all", subs="status", generation=True
    ),
    _rt(
        "apps/v1",
        "Deployment",
        "deployments",
        short="deploy",
        cats="all",
        subs="status",
        generation=True,
    ),
    _rt(
        "apps/v1",
        "ReplicaSet",
        "replicasets",
        short="rs",
        cats="all",
        subs="status",
        generation=True,
    ),
    _rt(
        "apps/v1",
        "StatefulSet",
        "statefulsets",
        short="sts",
        cats="all",
        subs="status",
        generation=True,
    ),
    _rt("batch/v1", "CronJob", "cronjobs", short="cj", cats="all", subs="status", generation=True),
    _rt("batch/v1", "Job", "jobs", cats="all", subs="status", generation=True),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", cluster=True),
    _rt(
        "networking.k8s.io/v1", "Ingress", "ingresses", short="ing", subs="status", generation=True
    ),
    _rt(
        "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short="netpol", generation=True
    ),
    _rt(
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short="pdb",
        subs="status",
        generation=True,
    ),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", cluster=True),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", cluster=True),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _rt("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", cluster=True, short="pc"),
    _rt(
        "storage.k8s.io/v1",
        "StorageClass",
        "storageclasses",
        cluster=True,
        short="sc",
        returns_object=True,
    ),
    _rt(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        cluster=True,
        short="crd crds",
        subs="status",
        generation=True,
        returns_object=True,
    ),
)

CRD_TYPE = next(rt for rt in BUILTIN if rt.kind == "CustomResourceDefinition")
NAMESPACE_TYPE = next(rt for rt in BUILTIN if rt.kind == "Namespace")

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key, lowest first, for Kubernetes' version order: v2 > v1 > v1beta2 > v1alpha1 > foo."""
    match = _VERSION_RE.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = int(match[1]), match[2], int(match[3] or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


def crd_resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served resource types one CRD defines, one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    result = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        result.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=("status",) if "status" in subresources else (),
                generation=True,
                custom=True,
                list_kind_name=names.get("listKind") or "",
                singular_name=names.get("singular") or "",
            )
        )
    return result


def group_versions(types: Iterable[ResourceType]) -> dict[str, dict[str, list[ResourceType]]]:
    """group -> version -> types, groups and versions in first-seen order."""
    result: dict[str, dict[str, list[ResourceType]]] = {}
    for rt in types:
        result.setdefault(rt.group, {}).setdefault(rt.version, []).append(rt)
    return result
