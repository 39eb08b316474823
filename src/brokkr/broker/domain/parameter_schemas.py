"""Template parameter schemas: JSON Schema, compiled once and never fetching anything (D9). Pure.

The draft comes from ``$schema`` (2020-12 when absent; draft-07 and the other published drafts
accepted). A ``$ref`` may point only inside the schema itself or to a draft's meta-schema,
which jsonschema bundles (jsonschema_specifications), so it resolves offline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, final
from urllib.parse import urldefrag, urljoin

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema_specifications import REGISTRY as _BUNDLED

from brokkr.broker.domain import errors


@final
class ParameterSchema:
    """A compiled schema; reusable by any thread."""

    __slots__ = ("_validator",)

    def __init__(self, validator: Any) -> None:
        self._validator = validator


def compile_schema(schema: Mapping[str, Any]) -> ParameterSchema:
    """Check that ``schema`` is a JSON Schema of a known draft whose every ``$ref`` stays inside
    it; raise ``ParametersSchemaInvalid`` otherwise."""
    if not isinstance(schema, Mapping):
        raise errors.ParametersSchemaInvalid("the schema must be a JSON object")
    dialect = schema.get("$schema")
    if dialect is not None:
        try:
            referencing.jsonschema.specification_with(str(dialect))
        except referencing.jsonschema.UnknownDialect as exc:
            raise errors.ParametersSchemaInvalid(
                f"unknown $schema {dialect!r}", pointer="/$schema"
            ) from exc
    cls = jsonschema.validators.validator_for(
        schema, default=jsonschema.validators.Draft202012Validator
    )
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise errors.ParametersSchemaInvalid(
            exc.message, pointer=_pointer(exc.absolute_path)
        ) from exc
    _check_references(schema)
    # mypy does not see the attrs-made constructors of referencing's classes.
    registry: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse)  # type: ignore[call-arg]
    return ParameterSchema(cls(schema, registry=registry.combine(_BUNDLED)))


def validate(schema: ParameterSchema, parameters: Any) -> None:
    """Raise ``InvalidParameters`` listing every violation of ``schema`` by ``parameters``
    (not only the first)."""
    try:
        found = list(schema._validator.iter_errors(parameters))
    except referencing.exceptions.Unresolvable as exc:
        # Cannot happen for a schema that compile_schema accepted; refuse rather than fetch.
        raise errors.ParametersSchemaInvalid(f"unresolvable $ref: {exc}") from exc
    if found:
        raise errors.InvalidParameters([_violation(error) for error in found])


def _violation(error: jsonschema.exceptions.ValidationError) -> str:
    pointer = _pointer(error.absolute_path)
    return f"{pointer}: {error.message}" if pointer else error.message


def _pointer(path: Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _check_references(schema: Mapping[str, Any]) -> None:
    base = str(schema.get("$id", ""))
    # Documents the schema itself names with $id: a $ref to one of them stays inside.
    inside = {urldefrag(urljoin(base, identifier)).url for identifier in _ids(schema)}
    inside.add(urldefrag(base).url)
    for pointer, ref in _references(schema, ""):
        target = urldefrag(urljoin(base, ref)).url
        if target in inside:
            continue
        try:
            _BUNDLED.get_or_retrieve(target)
        except (referencing.exceptions.Unretrievable, referencing.exceptions.NoSuchResource) as exc:
            raise errors.ParametersSchemaInvalid(
                f"$ref {ref!r} points outside the schema; remote and file references are "
                "never fetched",
                pointer=pointer,
            ) from exc


def _ids(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        identifier = node.get("$id")
        if isinstance(identifier, str):
            yield identifier
        for value in node.values():
            yield from _ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ids(item)


def _references(node: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{pointer}/{_pointer([key])[1:]}"
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(value, str):
                yield here, value
            else:
                yield from _references(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{pointer}/{index}")


def _refuse(uri: str) -> referencing.Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]
