"""Discovery documents in the real (legacy, non-aggregated) shapes:
``/api`` APIVersions, ``/apis`` APIGroupList, ``/apis/<g>`` APIGroup, ``.../<v>`` APIResourceList.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .resources import ResourceType, group_versions, version_priority

Obj = dict[str, Any]

VERSION_INFO: Obj = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: Sequence[str]) -> Obj:
    ordered = sorted(versions, key=version_priority)
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in ordered]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(types: Sequence[ResourceType]) -> Obj:
    groups = [
        _group(name, list(versions))
        for name, versions in group_versions(types).items()
        if name  # the core group is served at /api
    ]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(types: Sequence[ResourceType], name: str) -> Obj | None:
    versions = group_versions(types).get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, list(versions))}


def resource_list(types: Sequence[ResourceType], group_name: str, version: str) -> Obj | None:
    members = group_versions(types).get(group_name, {}).get(version)
    if not members:
        return None
    resources = sorted(
        (entry for rt in members for entry in rt.discovery_entries()), key=lambda e: e["name"]
    )
    doc: Obj = {"kind": "APIResourceList"}
    if group_name:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group_name}/{version}" if group_name else version
    doc["resources"] = resources
    return doc
