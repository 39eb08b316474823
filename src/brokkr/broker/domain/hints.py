"""Hints for agents on the channel: what changed that concerns them (REST stays authoritative;
a hint only makes an agent ask now instead of at its next poll).

A use case declares a hint in its unit of work; once the change commits, this broker delivers
it to its own connections and announces it to the other brokers of the database (PostgreSQL
``NOTIFY``; SQLite: the ``agent_hints`` table), which deliver it to theirs. Hints are small
(ids only): each broker resolves which of its connected agents are concerned, and the frame's
body, from the database.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

HintKind = Literal["stack_changed", "target_changed", "work_order"]

# PostgreSQL refuses a NOTIFY payload over 8000 bytes; past this many agents a hint is sent to
# every connected agent instead of naming them (an agent asked needlessly answers a 304).
MAX_NAMED_AGENTS = 150


class Hint(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """``ref``: the stack (stack_changed), the target row (target_changed) or the work order.

    ``agents``: agents concerned besides those the broker resolves from the database after the
    commit (e.g. those a removed label used to reach, which the database no longer shows);
    ``everyone``: every connected agent is concerned. For target_changed, ``agent_id`` and
    ``stack_id`` are the target's own (the row may be gone by the time it is resolved).
    """

    kind: HintKind
    ref: UUID
    agent_id: UUID | None = None
    stack_id: UUID | None = None
    agents: tuple[UUID, ...] = ()
    everyone: bool = False

    def bounded(self) -> Hint:
        if len(self.agents) <= MAX_NAMED_AGENTS:
            return self
        return msgspec.structs.replace(self, agents=(), everyone=True)


class Notice(msgspec.Struct, kw_only=True, frozen=True):
    """A hint as announced to other brokers, with the announcing broker's instance id (a broker
    delivers its own hints right after its commit and ignores their echo)."""

    origin: UUID
    hint: Hint


def encode_notice(origin: UUID, hint: Hint) -> str:
    return msgspec.json.encode(Notice(origin=origin, hint=hint.bounded())).decode()


def decode_notice(payload: str) -> Notice | None:
    try:
        return msgspec.json.decode(payload, type=Notice)
    except msgspec.DecodeError:
        return None
