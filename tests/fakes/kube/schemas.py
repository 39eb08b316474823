"""Built-in kinds checked against the real Kubernetes OpenAPI schemas, as the API server decodes.

The schemas come from the ``kubernetes-validate`` package (strict variant: unknown fields are
``additionalProperties: false``), for :data:`KUBERNETES_VERSION`, loaded once per process on
first use. What a real server does with a bad body depends on the verb:

- server-side apply converts the patch to a typed object first: an unknown field or a wrong
  type is a 500 whose message is ``failed to create typed patch object (ns/name; apps/v1,
  Kind=Deployment): .spec.foo: field not declared in schema``, whatever ``fieldValidation``;
- create, update and the other patches decode JSON into Go structs: a wrong type is a 400
  ``json: cannot unmarshal ...``; an unknown field is a 400 ``strict decoding error: unknown
  field "spec.foo"`` with ``fieldValidation=Strict``, a ``Warning`` header with ``Warn`` (the
  server's default) and is dropped silently with ``Ignore``;
- a required field that is missing is a validation error (422 Invalid, ``Required value``),
  checked on the object as it would be stored.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from . import errors
from .resources import ResourceType

Obj = dict[str, Any]
Cause = tuple[str, str, str]
PathItem = str | int

# The newest version kubernetes-validate ships; the fake claims to be this server.
KUBERNETES_VERSION = "1.37.0"
FIELD_VALIDATIONS = ("Ignore", "Warn", "Strict")
_GO_TYPES = {"integer": "int64", "number": "float64", "boolean": "bool", "string": "string"}
_SMD_TYPES = {
    "integer": "numeric (int or float)",
    "number": "numeric (int or float)",
    "boolean": "bool",
    "string": "string",
    "object": "map",
    "array": "list",
}


@dataclass(frozen=True)
class Problem:
    """One way ``obj`` differs from its schema; ``path`` leads to the offending value."""

    kind: str  # "unknown" (field not in schema), "type", "required"
    path: tuple[PathItem, ...]
    typed: str  # the same path as structured-merge-diff names it: containers[name="web"]
    expected: str = ""  # for "type": the JSON type the schema wants
    go_type: str = ""  # for "type": the Go type a JSON decoder would name
    struct: str = ""  # for "type": the Go struct holding the field


@functools.cache
def _definitions() -> dict[str, Obj]:
    folder = f"v{KUBERNETES_VERSION}-local-strict"
    ref = resources.files("kubernetes_validate").joinpath(
        "kubernetes-json-schema", folder, "_definitions.json"
    )
    defs: dict[str, Obj] = json.loads(ref.read_text())["$defs"]
    return defs


@functools.cache
def _kinds() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from ``x-kubernetes-group-version-kind``."""
    index = {}
    for name, schema in _definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            index[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name
    return index


def _resolve(schema: Obj) -> tuple[Obj, str]:
    """The schema behind a ``$ref`` (if any), and its definition's short name."""
    ref = schema.get("$ref")
    if ref is None:
        return schema, ""
    name = ref.rsplit("/", 1)[-1]
    return _definitions()[name], name.rsplit(".", 1)[-1]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _type_ok(value: Any, types: list[str]) -> bool:
    actual = _json_type(value)
    return actual in types or (actual == "integer" and "number" in types) or actual == "null"


class _Walker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def walk(
        self, value: Any, schema: Obj, path: tuple[PathItem, ...], typed: str, struct: str
    ) -> None:
        schema, name = _resolve(schema)
        struct = name or struct
        if "oneOf" in schema:  # IntOrString, Quantity: any of the alternatives' types
            types = [t for alt in schema["oneOf"] for t in alt.get("type", [])]
            if not _type_ok(value, types):
                self.problems.append(Problem("type", path, typed, types[0], "string", struct))
            return
        types = schema.get("type") or []
        if types and not _type_ok(value, types):
            expected = types[0]
            go_type = schema.get("format") or _GO_TYPES.get(expected, "map[string]interface {}")
            if expected == "object" and name:
                go_type = name
            self.problems.append(Problem("type", path, typed, expected, go_type, struct))
            return
        if isinstance(value, dict):
            self._object(value, schema, path, typed, struct)
        elif isinstance(value, list) and "items" in schema:
            keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
            for index, item in enumerate(value):
                step = f"[{index}]"
                if keys and isinstance(item, dict) and all(k in item for k in keys):
                    step = "[" + ",".join(f"{k}={json.dumps(item[k])}" for k in keys) + "]"
                self.walk(item, schema["items"], (*path, index), typed + step, struct)

    def _object(
        self, value: Obj, schema: Obj, path: tuple[PathItem, ...], typed: str, struct: str
    ) -> None:
        properties: Obj = schema.get("properties") or {}
        extra = schema.get("additionalProperties", True)
        for key in schema.get("required") or ():
            if value.get(key) is None:
                self.problems.append(Problem("required", (*path, key), f"{typed}.{key}"))
        for key, item in value.items():
            if key in properties:
                self.walk(item, properties[key], (*path, key), f"{typed}.{key}", struct)
            elif isinstance(extra, dict):
                self.walk(item, extra, (*path, key), f"{typed}.{key}", struct)
            elif extra is False:
                self.problems.append(Problem("unknown", (*path, key), f"{typed}.{key}"))


def problems(rt: ResourceType, obj: Obj) -> list[Problem]:
    """Everything wrong with ``obj`` for its schema; none for kinds without one (custom)."""
    if rt.custom:
        return []
    name = _kinds().get((rt.group, rt.version, rt.kind))
    if name is None:
        return []
    walker = _Walker()
    walker.walk(obj, {"$ref": f"#/$defs/{name}"}, (), "", "")
    return walker.problems


def decoding_path(path: tuple[PathItem, ...]) -> str:
    """``spec.template.spec.containers[0].foo``, as strict JSON decoding names a field."""
    text = ""
    for step in path:
        text += (f".{step}" if text else step) if isinstance(step, str) else f"[{step}]"
    return text


def _at(obj: Obj, path: tuple[PathItem, ...]) -> Any:
    value: Any = obj
    for step in path:
        value = value[step]
    return value


def check_apply_patch(rt: ResourceType, namespace: str, name: str, patch: Obj) -> None:
    """A server-side apply patch must convert to the typed object, or the server answers 500."""
    found = [p for p in problems(rt, patch) if p.kind != "required"]
    if not found:
        return
    texts = [f"{p.typed}: {_typed_message(p, patch)}" for p in found]
    where = f"{namespace}/{name}" if rt.namespaced else f"/{name}"
    gvk = f"{rt.group}/{rt.version}" if rt.group else f"/{rt.version}"
    detail = texts[0] if len(texts) == 1 else "errors:\n  " + "\n  ".join(texts)
    raise errors.ApiError(
        500,
        "",
        f"failed to create typed patch object ({where}; {gvk}, Kind={rt.kind}): {detail}",
    )


def _typed_message(problem: Problem, patch: Obj) -> str:
    if problem.kind == "unknown":
        return "field not declared in schema"
    value = _at(patch, problem.path)
    actual = _SMD_TYPES.get(_json_type(value), _json_type(value))
    return f"expected {_SMD_TYPES.get(problem.expected, problem.expected)}, got {actual}"


def decode(rt: ResourceType, obj: Obj, field_validation: str) -> list[str]:
    """Decode a create/update body: wrong types are 400s, unknown fields are handled by
    ``field_validation`` (Strict: 400, Warn: dropped with a warning, Ignore: dropped).
    Returns the warnings to send."""
    found = [p for p in problems(rt, obj) if p.kind != "required"]
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    wrong = next((p for p in found if p.kind == "type"), None)
    if wrong is not None:
        raise errors.bad_request(
            f"{prefix}json: cannot unmarshal {_json_type(_at(obj, wrong.path))} into Go struct "
            f"field {wrong.struct}.{decoding_path(wrong.path)} of type {wrong.go_type}"
        )
    unknown = [f'unknown field "{decoding_path(p.path)}"' for p in found]
    if unknown and field_validation == "Strict":
        raise errors.bad_request(f"{prefix}strict decoding error: {', '.join(unknown)}")
    for problem in reversed(found):
        _at(obj, problem.path[:-1]).pop(problem.path[-1], None)
    return unknown if field_validation == "Warn" else []


def required_causes(rt: ResourceType, obj: Obj) -> list[Cause]:
    """Validation of the object to store: required fields that are missing."""
    return [
        ("FieldValueRequired", decoding_path(p.path), "Required value")
        for p in problems(rt, obj)
        if p.kind == "required"
    ]
