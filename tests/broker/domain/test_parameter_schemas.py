"""Template parameter schemas: the draft chosen by ``$schema`` (2020-12 by default, draft-07
accepted), schemas that are not schemas refused, remote and file ``$ref`` refused without any
network or file access, and every violation of the parameters listed."""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

import pytest

from brokkr.broker.domain import errors, parameter_schemas

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch a $ref fails the test instead of reaching out."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a schema tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _violations(schema: dict[str, Any], parameters: Any) -> list[str]:
    compiled = parameter_schemas.compile_schema(schema)
    with pytest.raises(errors.InvalidParameters) as caught:
        parameter_schemas.validate(compiled, parameters)
    assert caught.value.status == 400
    assert caught.value.message == "invalid parameters"
    assert caught.value.details is not None
    violations: list[str] = caught.value.details["validation_errors"]
    return violations


def test_an_empty_schema_accepts_anything() -> None:
    compiled = parameter_schemas.compile_schema({})
    values: list[Any] = [{}, {"a": [1, {"b": None}]}, [], "x", 3]
    for parameters in values:
        parameter_schemas.validate(compiled, parameters)


def test_every_violation_is_listed_with_its_pointer() -> None:
    schema = {
        "type": "object",
        "required": ["name", "replicas"],
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "ports": {"type": "array", "items": {"type": "integer"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    violations = _violations(
        schema, {"replicas": 0, "ports": [80, "http", "https"], "labels": {"a/b": 1}}
    )
    assert len(violations) == 5
    assert "'name' is a required property" in violations
    assert any(v.startswith("/replicas: ") for v in violations)
    assert any(v.startswith("/ports/1: ") for v in violations)
    assert any(v.startswith("/ports/2: ") for v in violations)
    # JSON pointer escaping: "/" in a key is "~1".
    assert any(v.startswith("/labels/a~1b: ") for v in violations)


def test_a_root_violation_has_no_pointer() -> None:
    assert _violations({"type": "object"}, [1]) == ["[1] is not of type 'object'"]


def test_valid_parameters_pass() -> None:
    compiled = parameter_schemas.compile_schema(
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    )
    parameter_schemas.validate(compiled, {"name": "web", "extra": True})


def test_draft_07_is_used_when_named() -> None:
    # "dependentRequired" is a keyword since 2019-09: draft-07 ignores it, 2020-12 enforces it.
    schema = {"dependentRequired": {"a": ["b"]}}
    parameter_schemas.validate(
        parameter_schemas.compile_schema({"$schema": DRAFT_07, **schema}), {"a": 1}
    )
    assert _violations({"$schema": DRAFT_2020_12, **schema}, {"a": 1}) == [
        "'b' is a dependency of 'a'"
    ]


def test_2020_12_is_the_default() -> None:
    # "prefixItems" exists only since 2020-12.
    schema = {"prefixItems": [{"type": "integer"}]}
    assert len(_violations(schema, ["x"])) == 1
    parameter_schemas.validate(
        parameter_schemas.compile_schema({"$schema": DRAFT_07, **schema}), ["x"]
    )


def test_draft_07_definitions_and_local_refs_work() -> None:
    schema = {
        "$schema": DRAFT_07,
        "definitions": {"port": {"type": "integer", "maximum": 65535}},
        "properties": {"port": {"$ref": "#/definitions/port"}},
    }
    assert _violations(schema, {"port": 70000}) == [
        "/port: 70000 is greater than the maximum of 65535"
    ]


def test_refs_to_embedded_ids_and_meta_schemas_resolve_offline() -> None:
    schema = {
        "$id": "https://schemas.example/app.json",
        "$defs": {"name": {"$id": "name.json", "type": "string"}},
        "properties": {"name": {"$ref": "name.json"}, "schema": {"$ref": DRAFT_2020_12}},
    }
    assert len(_violations(schema, {"name": 1, "schema": {"type": 3}})) == 2


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/schemas/app.json",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "/etc/passwd",
        "other.json#/definitions/x",
        "https://example.com/schemas/app.json#/properties/name",
    ],
)
def test_a_remote_or_file_ref_is_refused_and_never_fetched(ref: str) -> None:
    schema = {"type": "object", "properties": {"name": {"$ref": ref}}}
    with pytest.raises(errors.ParametersSchemaInvalid) as caught:
        parameter_schemas.compile_schema(schema)
    assert caught.value.status == 422
    assert caught.value.code == "invalid_parameters_schema"
    assert caught.value.message.startswith("Invalid JSON Schema:")
    assert caught.value.details == {
        "field": "parameters_schema",
        "pointer": "/properties/name/$ref",
    }


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": 12}, "/type"),
        ({"type": "strung"}, "/type"),
        ({"properties": []}, "/properties"),
        ({"required": "name"}, "/required"),
        ({"minimum": "one"}, "/minimum"),
        ({"$schema": DRAFT_07, "items": 5}, "/items"),
        ({"$schema": "https://example.com/not-a-draft"}, "/$schema"),
    ],
)
def test_a_schema_that_is_not_a_schema_is_refused(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(errors.ParametersSchemaInvalid) as caught:
        parameter_schemas.compile_schema(schema)
    assert caught.value.status == 422
    assert caught.value.message.startswith("Invalid JSON Schema:")
    assert caught.value.details == {"field": "parameters_schema", "pointer": pointer}


@pytest.mark.parametrize("schema", [[], "a string", 3, None])
def test_a_schema_must_be_an_object(schema: Any) -> None:
    with pytest.raises(errors.ParametersSchemaInvalid):
        parameter_schemas.compile_schema(schema)


def test_a_compiled_schema_is_reusable() -> None:
    compiled = parameter_schemas.compile_schema({"type": "integer"})
    for _ in range(3):
        parameter_schemas.validate(compiled, 1)
        with pytest.raises(errors.InvalidParameters):
            parameter_schemas.validate(compiled, "x")
