"""Compiled templates and parameter validators, by template version.

A version row never changes (an update inserts the next version), so an entry keyed by its id
never goes stale; it is only evicted, least recently used first, past a fixed count. Compiling
on every instantiation would cost more than rendering.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

import msgspec

from brokkr.broker.domain import parameter_schemas, templating

DEFAULT_MAX_ENTRIES = 1024


class Prepared(msgspec.Struct, frozen=True):
    """What rendering one version needs: its compiled content and its parameter validator."""

    template: templating.Compiled
    schema: parameter_schemas.ParameterSchema


class TemplateCache:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[UUID, Prepared] = OrderedDict()

    def get(self, template_id: UUID) -> Prepared | None:
        found = self._entries.get(template_id)
        if found is not None:
            self._entries.move_to_end(template_id)
        return found

    def put(self, template_id: UUID, prepared: Prepared) -> None:
        self._entries[template_id] = prepared
        self._entries.move_to_end(template_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
