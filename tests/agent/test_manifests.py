"""Manifest parsing, identity, ordering and ownership stamping (pure; D23, flaws 1, 2, 9).

Covers multi-document parsing (empty documents skipped, timestamps kept as strings), errors that
name the document, identities with namespace defaulting and version-independent keys, the apply
priority table (Namespaces, CRDs, RBAC/config, the rest, custom resources of same-object CRDs),
reverse order for deletion, stamping that merges into users' labels and annotations with the
reference agent's keys, and the owner check (§20.5).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest

from brokkr.agent import manifests
from brokkr.agent.manifests import ObjectRef
from brokkr.common.yaml_guard import YamlLimits

LIMITS = YamlLimits()
STACK = UUID("00000000-0000-0000-0000-00000000000a")
AGENT = UUID("00000000-0000-0000-0000-00000000000b")
DO = UUID("00000000-0000-0000-0000-00000000000c")
CHECKSUM = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def obj(kind: str, name: str, api_version: str = "v1", **extra: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **extra}


CRD = obj(
    "CustomResourceDefinition",
    "widgets.example.com",
    "apiextensions.k8s.io/v1",
    spec={"group": "example.com", "names": {"kind": "Widget"}},
)


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("", []),
        ("---\n---\n", []),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", ["a"]),
        (
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
            ["a", "b"],
        ),
    ],
)
def test_parse_keeps_document_order_and_skips_empty_documents(
    content: str, names: list[str]
) -> None:
    assert [m["metadata"]["name"] for m in manifests.parse(content, LIMITS)] == names


def test_parse_keeps_timestamps_as_strings() -> None:
    parsed = manifests.parse(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {d: 2024-01-02}\n", LIMITS
    )
    assert parsed[0]["data"] == {"d": "2024-01-02"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: ConfigMap\nmetadata: {name: a}\n", "document 1: missing apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "document 1: missing kind"),
        ("apiVersion: v1\nkind: ConfigMap\n", r"document 1 \(ConfigMap\): missing metadata.name"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n",
            "missing metadata.name",
        ),
        ("---\n---\n- a\n- b\n", "document 2: expected a mapping, got list"),
        ("plain text\n", "document 1: expected a mapping, got str"),
        ("apiVersion: v1\nkind: List\nitems: []\n", "kind List is not supported"),
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkey: [unclosed\n",
            "document 2: invalid YAML",
        ),
    ],
)
def test_parse_errors_name_the_document(content: str, message: str) -> None:
    with pytest.raises(manifests.ManifestError, match=message):
        manifests.parse(content, LIMITS)


@pytest.mark.parametrize(
    ("manifest", "namespaced", "expected_namespace"),
    [
        (obj("ConfigMap", "a"), True, "default"),
        ({**obj("ConfigMap", "a"), "metadata": {"name": "a", "namespace": "x"}}, True, "x"),
        (obj("Namespace", "a"), False, ""),
        ({**obj("ClusterRole", "a"), "metadata": {"name": "a", "namespace": "x"}}, False, ""),
    ],
)
def test_identify_defaults_the_namespace_of_namespaced_kinds(
    manifest: dict[str, Any], namespaced: bool, expected_namespace: str
) -> None:
    ref = manifests.identify(manifest, namespaced=namespaced)
    assert (ref.kind, ref.name, ref.namespace) == (manifest["kind"], "a", expected_namespace)


def test_identity_key_ignores_the_api_version() -> None:
    old = ObjectRef(api_version="apps/v1beta1", kind="Deployment", namespace="d", name="web")
    new = ObjectRef(api_version="apps/v1", kind="Deployment", namespace="d", name="web")
    assert old.key == new.key == ("apps", "Deployment", "d", "web")
    assert ObjectRef(api_version="v1", kind="Pod", namespace="d", name="p").group == ""


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        # Reference checklist §20.5: Namespace first; CRD first; Namespace and CRD lead.
        (
            ["ConfigMap:c", "Namespace:n", "Deployment:d"],
            ["Namespace:n", "ConfigMap:c", "Deployment:d"],
        ),
        (["ConfigMap:c", "CRD"], ["CustomResourceDefinition:widgets.example.com", "ConfigMap:c"]),
        (
            ["Widget:w", "Deployment:d", "CRD", "Namespace:n", "ConfigMap:c"],
            [
                "Namespace:n",
                "CustomResourceDefinition:widgets.example.com",
                "ConfigMap:c",
                "Deployment:d",
                "Widget:w",
            ],
        ),
        (
            [
                "Deployment:d",
                "RoleBinding:rb",
                "Role:r",
                "ServiceAccount:sa",
                "Secret:s",
                "Service:svc",
            ],
            [
                "Role:r",
                "ServiceAccount:sa",
                "RoleBinding:rb",
                "Secret:s",
                "Service:svc",
                "Deployment:d",
            ],
        ),
        # Without its CRD in the same object, a custom kind is ordinary "rest".
        (["Widget:w", "Deployment:d"], ["Widget:w", "Deployment:d"]),
        (["ConfigMap:b", "ConfigMap:a"], ["ConfigMap:b", "ConfigMap:a"]),
    ],
)
def test_order_for_apply_puts_dependencies_first(documents: list[str], expected: list[str]) -> None:
    def build(spec: str) -> dict[str, Any]:
        if spec == "CRD":
            return CRD
        kind, name = spec.split(":")
        api_version = {"Widget": "example.com/v1", "Deployment": "apps/v1"}.get(kind, "v1")
        return obj(kind, name, api_version)

    ordered = manifests.order_for_apply([build(spec) for spec in documents])
    assert [f"{m['kind']}:{m['metadata']['name']}" for m in ordered] == expected


def test_order_for_deletion_deletes_dependents_first() -> None:
    def ref(kind: str, name: str, api_version: str = "v1") -> ObjectRef:
        return ObjectRef(api_version=api_version, kind=kind, namespace="", name=name)

    refs = [
        ref("Namespace", "n"),
        ref("CustomResourceDefinition", "c", "apiextensions.k8s.io/v1"),
        ref("ConfigMap", "cm"),
        ref("Deployment", "d", "apps/v1"),
        ref("ServiceAccount", "sa"),
    ]
    assert [r.kind for r in manifests.order_for_deletion(refs)] == [
        "Deployment",
        "ConfigMap",
        "ServiceAccount",
        "CustomResourceDefinition",
        "Namespace",
    ]


@pytest.mark.parametrize(
    "metadata",
    [
        {"name": "a"},
        {"name": "a", "labels": None, "annotations": None},
        {"name": "a", "labels": {"app": "web"}, "annotations": {"team": "blue"}},
        # Users cannot claim ownership keys: stamping overwrites them.
        {"name": "a", "annotations": {manifests.OWNER_ID_ANNOTATION: "someone-else"}},
    ],
)
def test_stamp_merges_ownership_into_users_metadata(metadata: dict[str, Any]) -> None:
    original = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    before = repr(original)
    stamped = manifests.stamp(
        original, stack_id=STACK, owner_id=AGENT, deployment_object_id=DO, checksum=CHECKSUM
    )
    assert repr(original) == before  # the input is not mutated
    users_labels = {
        k: v for k, v in (metadata.get("labels") or {}).items() if not k.startswith("brokkr.io/")
    }
    users_annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if "brokkr.io/" not in k
    }
    assert stamped["metadata"]["labels"] == {**users_labels, manifests.STACK_ID_LABEL: str(STACK)}
    assert stamped["metadata"]["annotations"] == {
        **users_annotations,
        manifests.STACK_ANNOTATION: str(STACK),
        manifests.CHECKSUM_ANNOTATION: CHECKSUM,
        manifests.DEPLOYMENT_OBJECT_ID_ANNOTATION: str(DO),
        # What the user wrote, before stamping: the reference's last-config-applied.
        manifests.LAST_CONFIG_APPLIED_ANNOTATION: json.dumps(original, sort_keys=True),
        manifests.OWNER_ID_ANNOTATION: str(AGENT),
    }


def test_label_values_fit_kubernetes_limits() -> None:
    stamped = manifests.stamp(
        obj("ConfigMap", "a"),
        stack_id=STACK,
        owner_id=AGENT,
        deployment_object_id=DO,
        checksum=CHECKSUM,
    )
    assert all(len(value) <= 63 for value in stamped["metadata"]["labels"].values())


def annotated(owner: object) -> dict[str, Any]:
    return {"metadata": {"annotations": {manifests.OWNER_ID_ANNOTATION: owner}}}


@pytest.mark.parametrize(
    ("live", "owned"),
    [
        (annotated(str(AGENT)), True),
        # The same UUID spelt in upper case is the same agent.
        (annotated(str(AGENT).upper()), True),
        (annotated("00000000-0000-0000-0000-000000000bad"), False),
        (annotated(""), False),
        (annotated("not-a-uuid"), False),
        (annotated(None), False),
        # Our owner label alone is not ownership: the reference reads the annotation.
        ({"metadata": {"labels": {manifests.OWNER_ID_LABEL: str(AGENT)}}}, False),
        ({"metadata": {"annotations": None}}, False),
        ({"metadata": {"annotations": {}}}, False),
        ({"metadata": {}}, False),
        ({}, False),
    ],
)
def test_owner_check_needs_this_agents_id_in_the_annotation(
    live: dict[str, Any], owned: bool
) -> None:
    """§20.5 owner check: true only when `brokkr.io/owner-id` equals the agent id."""
    assert manifests.is_owned_by(live, AGENT) is owned
