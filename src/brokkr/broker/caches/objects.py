"""Deployment objects held in memory for target-state answers.

Objects are immutable and served to many agents, so a full target-state answer is assembled
from memory after a digest query (ids and checksums only) instead of reading every object's YAML
from the database on every poll. Only live objects are served, and a live object never changes,
so an entry never goes stale while it can be served. Bounded by the total YAML held.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

from brokkr.common import wire

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024


class ObjectCache:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._budget = budget_bytes
        self._held = 0
        self._objects: OrderedDict[UUID, wire.DeploymentObject] = OrderedDict()

    def get(self, object_id: UUID) -> wire.DeploymentObject | None:
        found = self._objects.get(object_id)
        if found is not None:
            self._objects.move_to_end(object_id)
        return found

    def put_all(self, objects: Iterable[wire.DeploymentObject]) -> None:
        for item in objects:
            if item.id in self._objects:
                continue
            self._objects[item.id] = item
            self._held += len(item.yaml_content)
        while self._held > self._budget and self._objects:
            _, evicted = self._objects.popitem(last=False)
            self._held -= len(evicted.yaml_content)
