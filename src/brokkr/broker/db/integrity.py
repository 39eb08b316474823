"""Database failures that mean a domain error, translated the same way on both databases.

``translate`` is the engine's ``handle_error`` hook, so it sees every failed statement: a
violated unique constraint becomes its resource's conflict (described from the row that
conflicted), any other integrity violation a ``ConstraintViolation``, and PostgreSQL refusing a
NUL character in text (SQLite stores it) ``InvalidText``, a statement cancelled by its timeout
``DatabaseUnavailable``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.default import DefaultExecutionContext

from brokkr.broker.db import tables
from brokkr.broker.domain import errors

_CONFLICTS: dict[str, Callable[[Mapping[str, Any]], errors.Conflict]] = {
    "unique_agent_cluster": lambda _: errors.AgentNameTaken(),
    "unique_generator_name": lambda _: errors.GeneratorNameTaken(),
    "unique_stack_name": lambda _: errors.StackNameTaken(),
    "unique_agent_label": lambda row: errors.AgentLabelExists(row["label"]),
    "unique_stack_label": lambda row: errors.StackLabelExists(row["label"]),
    "unique_agent_annotation_key": lambda row: errors.AgentAnnotationExists(row["key"]),
    "unique_stack_annotation_key": lambda row: errors.StackAnnotationExists(row["key"]),
    "unique_agent_stack": lambda row: errors.AgentTargetExists(row["stack_id"]),
    "unique_template_label": lambda row: errors.TemplateLabelExists(row["label"]),
    "unique_template_annotation_key": lambda row: errors.TemplateAnnotationExists(row["key"]),
}

# PostgreSQL's character_not_in_repertoire.
_NUL_IN_TEXT = "22021"
# PostgreSQL's query_canceled: the statement ran past ``statement_timeout``.
_CANCELED = "57014"

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$", re.MULTILINE)


def _sqlite_names() -> dict[tuple[str, ...], str]:
    names: dict[tuple[str, ...], str] = {}
    for table in tables.metadata.tables.values():
        for index in table.indexes:
            if index.unique and index.name:
                names[tuple(f"{table.name}.{c.name}" for c in index.columns)] = str(index.name)
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint) and constraint.name:
                key = tuple(f"{table.name}.{c.name}" for c in constraint.columns)
                names[key] = str(constraint.name)
    return names


_BY_COLUMNS = _sqlite_names()


def translate(context: sa.engine.ExceptionContext) -> None:
    """Raise the domain error a failed statement means; return to let the failure stand."""
    exc = context.sqlalchemy_exception
    if getattr(context.original_exception, "sqlstate", None) == _NUL_IN_TEXT:
        raise errors.InvalidText() from exc
    if getattr(context.original_exception, "sqlstate", None) == _CANCELED:
        raise errors.DatabaseUnavailable() from exc
    if not isinstance(exc, sa.exc.IntegrityError):
        return
    run = context.execution_context
    if not isinstance(run, DefaultExecutionContext) or run.compiled is None:
        raise errors.ConstraintViolation("change") from exc
    conflict = _CONFLICTS.get(_violated_constraint(exc) or "")
    if conflict is not None:
        raise conflict(run.compiled_parameters[0]) from exc
    table = getattr(run.compiled.statement, "table", None)
    noun = table.name.removesuffix("s") if isinstance(table, sa.Table) else "change"
    raise errors.ConstraintViolation(noun) from exc


def _violated_constraint(exc: sa.exc.IntegrityError) -> str | None:
    """The violated unique index/constraint name, or None for other integrity errors."""
    cause = getattr(exc.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)
    if isinstance(name, str):
        return name
    match = _SQLITE_UNIQUE.search(str(exc.orig))
    if match:
        columns = tuple(part.strip() for part in match.group(1).split(","))
        return _BY_COLUMNS.get(columns)
    return None
