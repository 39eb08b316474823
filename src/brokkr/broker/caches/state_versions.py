"""Which target-state ETags this process may answer 304 to without asking the database.

An idle agent polls every few seconds and nothing has changed: the answer must cost no query.
Every write that can change target state announces it through its unit of work, which calls
``changed`` here right after the commit (other brokers hear of it through the change listener);
an ETag remembered before the announcement is no longer trusted.
"""

from __future__ import annotations

from uuid import UUID

Token = tuple[int, int]

_MAX_ENTRIES = 200_000


class StateVersions:
    def __init__(self) -> None:
        self._any_agent = 0
        self._per_agent: dict[UUID, int] = {}
        self._etags: dict[tuple[UUID, bool], tuple[str, Token]] = {}

    def token(self, agent_id: UUID) -> Token:
        """Take before reading the database; pass to ``remember`` with what was read."""
        return (self._any_agent, self._per_agent.get(agent_id, 0))

    def etag(self, agent_id: UUID, *, full: bool) -> str | None:
        entry = self._etags.get((agent_id, full))
        if entry is None or entry[1] != self.token(agent_id):
            return None
        return entry[0]

    def remember(self, agent_id: UUID, *, full: bool, etag: str, token: Token) -> None:
        # A change announced while the state was being read makes what was read suspect.
        if token != self.token(agent_id):
            return
        if len(self._etags) >= _MAX_ENTRIES:
            self._etags.clear()
        self._etags[(agent_id, full)] = (etag, token)

    def changed(self, agent_id: UUID | None) -> None:
        if agent_id is None:
            self._any_agent += 1
            self._etags.clear()
            return
        self._per_agent[agent_id] = self._per_agent.get(agent_id, 0) + 1
        self._etags.pop((agent_id, True), None)
        self._etags.pop((agent_id, False), None)
