"""What the real API server checks and fills in on write: names, labels, annotations, a few
immutable fields, CRD shape, and the defaults tests are most likely to notice."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from . import schemas
from .errors import ApiError, bad_request, invalid_object
from .resources import ResourceType

Obj = dict[str, Any]
Cause = tuple[str, str, str]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _name_causes(rt: ResourceType, name: str) -> list[Cause]:
    if not name:
        return [
            (
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        ]
    bad = f'Invalid value: "{name}": '
    if rt.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            return [("FieldValueInvalid", "metadata.name", bad + "may not contain '/' or '%'")]
        return []
    if rt.kind == "Namespace":
        ok, message, limit = bool(_DNS1123_LABEL.match(name)), LABEL_MESSAGE, 63
    elif rt.kind == "Service":
        ok, message, limit = bool(_DNS1035_LABEL.match(name)), DNS1035_MESSAGE, 63
    else:
        ok, message, limit = bool(_DNS1123_SUBDOMAIN.match(name)), SUBDOMAIN_MESSAGE, 253
    if len(name) > limit:
        return [("FieldValueInvalid", "metadata.name", bad + f"must be no more than {limit} chars")]
    return [] if ok else [("FieldValueInvalid", "metadata.name", bad + message)]


def _string_map(rt: ResourceType, value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: json: cannot '
            f"unmarshal value into Go struct field {field} of type map[string]string"
        )
    return value


def _label_causes(labels: dict[str, str]) -> list[Cause]:
    causes = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not _QUALIFIED_NAME.match(name) or len(name) > 63 or (prefix and not _subdomain(prefix)):
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if len(value) > 63:
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{value}": must be no more than 63 characters',
                )
            )
        elif not _LABEL_VALUE.match(value):
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character",
                )
            )
    return causes


def _subdomain(text: str) -> bool:
    return bool(_DNS1123_SUBDOMAIN.match(text)) and len(text) <= 253


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


IMMUTABLE: dict[str, tuple[tuple[str, ...], ...]] = {
    "deployments.apps": (("spec", "selector"),),
    "statefulsets.apps": (("spec", "selector"),),
    "daemonsets.apps": (("spec", "selector"),),
    "replicasets.apps": (("spec", "selector"),),
    "jobs.batch": (("spec", "selector"), ("spec", "template")),
    "services": (("spec", "clusterIP"),),
    "customresourcedefinitions.apiextensions.k8s.io": (("spec", "scope"),),
}


def _immutable_causes(rt: ResourceType, new: Obj, old: Obj) -> list[Cause]:
    causes = []
    for path in IMMUTABLE.get(rt.storage_key, ()):
        before, after = _get(old, *path), _get(new, *path)
        if before is not None and before != after:
            shown = json.dumps(after, sort_keys=True)
            causes.append(
                ("FieldValueInvalid", ".".join(path), f"Invalid value: {shown}: field is immutable")
            )
    if rt.kind in ("ConfigMap", "Secret") and old.get("immutable") is True:
        for key in ("data", "binaryData"):
            if old.get(key) != new.get(key):
                causes.append(
                    (
                        "FieldValueForbidden",
                        key,
                        "Forbidden: field is immutable when `immutable` is set",
                    )
                )
        if new.get("immutable") is not True:
            causes.append(
                (
                    "FieldValueForbidden",
                    "immutable",
                    "Forbidden: field is immutable when `immutable` is set",
                )
            )
    return causes


_WORKLOADS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
# Labels the Job controller's defaulting stamps on a Job's selector and pod template.
_JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
_JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def _go_map(labels: dict[str, Any]) -> str:
    """How a Go validation message prints a ``map[string]string``."""
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in labels.items()) + "}"


def selector_matches(selector: Obj, labels: dict[str, Any]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label map."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, values = expression.get("key"), expression.get("values") or []
        operator = expression.get("operator")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_causes(kind: str, obj: Obj, *, manual: bool = True) -> list[Cause]:
    """A workload's selector must be set, non-empty and match its pod template's labels."""
    selector = _get(obj, "spec", "selector")
    if selector is None:
        return [("FieldValueRequired", "spec.selector", "Required value")] if manual else []
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [
            (
                "FieldValueInvalid",
                "spec.selector",
                f"Invalid value: {json.dumps(selector)}: empty selector is invalid for "
                f"{kind.lower()}",
            )
        ]
    labels = _get(obj, "spec", "template", "metadata", "labels") or {}
    if selector_matches(selector, labels):
        return []
    return [
        (
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
        )
    ]


def _job_causes(job: Obj, old: Obj | None) -> list[Cause]:
    """Without ``manualSelector`` the server generates the selector on create; one the user
    set instead is an error (an update carries the generated one along)."""
    if _get(job, "spec", "manualSelector") is True:
        return _selector_causes("Job", job)
    selector = _get(job, "spec", "selector")
    generated = {"matchLabels": {_JOB_UID_LABELS[0]: job["metadata"].get("uid")}}
    if old is None and selector != generated:
        return [
            (
                "FieldValueInvalid",
                "spec.selector",
                f"Invalid value: {json.dumps(selector)}: `selector` will be auto-generated",
            )
        ]
    return []


def _crd_causes(crd: Obj) -> list[Cause]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[Cause] = []
    group, plural = spec.get("group") or "", names.get("plural") or ""
    if not group:
        causes.append(("FieldValueRequired", "spec.group", "Required value"))
    if not plural:
        causes.append(("FieldValueRequired", "spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(("FieldValueRequired", "spec.names.kind", "Required value"))
    name = crd["metadata"]["name"]
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", '
                '"Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            (
                "FieldValueRequired",
                "spec.versions",
                "Required value: must have at least one version",
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    return causes


def validate(rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Raise 400/422 like the real server's decoding and validation would."""
    meta = obj.get("metadata") or {}
    labels = _string_map(rt, meta.get("labels"), "ObjectMeta.metadata.labels")
    annotations = _string_map(rt, meta.get("annotations"), "ObjectMeta.metadata.annotations")
    causes = _name_causes(rt, meta.get("name") or "")
    causes += _label_causes(labels)
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > 262144:
        causes.append(
            (
                "FieldValueTooLong",
                "metadata.annotations",
                "Too long: must have at most 262144 bytes",
            )
        )
    if rt.kind == "ConfigMap":
        _string_map(rt, obj.get("data"), "ConfigMap.data")
    causes += schemas.required_causes(rt, obj)
    if rt.group == "apps" and rt.kind in _WORKLOADS:
        causes += _selector_causes(rt.kind, obj)
    if (rt.group, rt.kind) == ("batch", "Job"):
        causes += _job_causes(obj, old)
    if rt.kind == "CustomResourceDefinition" and not causes:
        causes += _crd_causes(obj)
    if old is not None:
        causes += _immutable_causes(rt, obj, old)
    if causes:
        raise invalid_object(rt, meta.get("name") or "", causes)


def _secret_data(rt: ResourceType, obj: Obj) -> None:
    data = _string_map(rt, obj.get("data"), "Secret.data")
    for value in data.values():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400,
                "BadRequest",
                'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at '
                "input byte 0",
            ) from None
    string_data = _string_map(rt, obj.pop("stringData", None), "Secret.stringData")
    if string_data:
        merged = dict(data)
        merged.update({k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()})
        obj["data"] = merged
    obj.setdefault("type", "Opaque")


class Defaulter:
    """Fills defaults; keeps the little state that needs (allocated cluster IPs)."""

    def __init__(self) -> None:
        self._next_ip = 0

    def apply(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        meta = obj.setdefault("metadata", {})
        if rt.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        elif rt.kind == "Secret":
            _secret_data(rt, obj)
        elif rt.kind == "Service":
            self._service(obj, old)
        elif rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            obj.setdefault("spec", {}).setdefault("replicas", 1)
        elif (rt.group, rt.kind) == ("batch", "Job") and old is None:
            _job_selector(obj)
        elif rt.kind == "Pod" and old is None:
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt.kind == "CustomResourceDefinition" and old is None:
            versions = _get(obj, "spec", "versions") or []
            obj["status"] = {
                "acceptedNames": {"plural": "", "kind": ""},
                "conditions": [],
                "storedVersions": [v.get("name") for v in versions if v.get("storage")],
            }

    def _service(self, obj: Obj, old: Obj | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        if spec["type"] == "ExternalName":
            return
        previous = _get(old, "spec", "clusterIP")
        if previous and "clusterIP" not in spec:
            spec["clusterIP"] = previous
        if "clusterIP" not in spec:
            spec["clusterIP"] = f"10.96.{self._next_ip // 250}.{self._next_ip % 250 + 1}"
            self._next_ip += 1
        spec.setdefault("clusterIPs", [spec["clusterIP"]])


def _job_selector(job: Obj) -> None:
    """What the Job registry does on create without ``manualSelector``: a selector on the Job's
    uid, and the matching labels on its pod template."""
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True or "selector" in spec:
        return
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    spec["selector"] = {"matchLabels": {_JOB_UID_LABELS[0]: uid}}
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({key: uid for key in _JOB_UID_LABELS})
        labels.update({key: name for key in _JOB_NAME_LABELS})
