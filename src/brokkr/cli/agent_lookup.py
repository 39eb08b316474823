"""Agents as a command shows and accepts them: ``name (cluster)`` for people, id or name in."""

from __future__ import annotations

from uuid import UUID

import typer

from brokkr.cli import output
from brokkr.client import BrokkrAPIError, BrokkrClient
from brokkr.common import wire


class AgentLookup:
    """Reads each agent at most once per command run: a watch re-renders every few seconds."""

    def __init__(self, brokkr: BrokkrClient) -> None:
        self._brokkr = brokkr
        self._known: dict[UUID, wire.Agent | None] = {}

    def remember(self, agents: list[wire.Agent]) -> None:
        """Agents already read by the command (e.g. a stack's), so they are not read again."""
        self._known.update((agent.id, agent) for agent in agents)

    def get(self, agent_id: UUID) -> wire.Agent | None:
        """The agent, or None when the caller may not read it (a generator) or it is gone."""
        if agent_id not in self._known:
            try:
                self._known[agent_id] = self._brokkr.agents.get(agent_id)
            except BrokkrAPIError:
                self._known[agent_id] = None
        return self._known[agent_id]

    def label(self, agent_id: UUID) -> str:
        """``name (cluster)``; the bare id when the agent cannot be read."""
        agent = self.get(agent_id)
        return str(agent_id) if agent is None else f"{agent.name} ({agent.cluster_name})"


def agent_of(brokkr: BrokkrClient, reference: str, *, param_hint: str) -> wire.Agent:
    """An agent given by id or by name; a name two clusters share must be given as an id."""
    try:
        return brokkr.agents.get(UUID(reference))
    except ValueError:
        named = [agent for agent in brokkr.agents.list() if agent.name == reference]
    if not named:
        output.error(f"no agent named {reference!r}")
        raise typer.Exit(1)
    if len(named) > 1:
        clusters = ", ".join(sorted(f"{a.cluster_name} ({a.id})" for a in named))
        raise typer.BadParameter(
            f"agents in several clusters are named {reference!r}: {clusters}; give the id",
            param_hint=param_hint,
        )
    return named[0]
