"""Name the unique constraint an IntegrityError violated, on both databases."""

from __future__ import annotations

import re

import sqlalchemy as sa

from brokkr.broker.db import tables

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


def violated_constraint(exc: sa.exc.IntegrityError) -> str | None:
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
