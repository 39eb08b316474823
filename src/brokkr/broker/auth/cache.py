"""A bounded TTL cache of verified PAK hashes → identities (D7)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from brokkr.broker.domain.access import Identity


class IdentityCache:
    """Entries live ``ttl`` seconds at most; the oldest are evicted beyond ``max_entries``.

    ``generation`` moves on every invalidation. A lookup that started before an invalidation
    must not store its (possibly revoked) result: ``put`` drops it when the generation moved.
    """

    def __init__(
        self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self.generation = 0

    def configure(self, *, ttl: float, max_entries: int) -> None:
        """New bounds (a reload, D20); entries kept under the old ones are dropped, so a lowered
        TTL (or 0, off) holds at once."""
        if (ttl, max_entries) != (self.ttl, self._max_entries):
            self.ttl, self._max_entries = ttl, max_entries
            self.forget(None)

    def get(self, pak_hash: str) -> Identity | None:
        entry = self._entries.get(pak_hash)
        if entry is None:
            return None
        expires, identity = entry
        if expires <= self._clock():
            self._entries.pop(pak_hash, None)
            return None
        return identity

    def put(self, pak_hash: str, identity: Identity, *, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        self._entries[pak_hash] = (self._clock() + self.ttl, identity)
        self._entries.move_to_end(pak_hash)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, pak_hash: str | None) -> None:
        """Drop one hash, or everything when ``pak_hash`` is None (news may have been missed)."""
        self.generation += 1
        if pak_hash is None:
            self._entries.clear()
        else:
            self._entries.pop(pak_hash, None)

    def __len__(self) -> int:
        return len(self._entries)
