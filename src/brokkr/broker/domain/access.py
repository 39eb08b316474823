"""Who is calling and what each role may touch (D8). Pure predicates, no I/O."""

from __future__ import annotations

import enum
from uuid import UUID

import msgspec

from brokkr.broker.domain import errors


class Role(enum.StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    GENERATOR = "generator"


class Identity(msgspec.Struct, frozen=True):
    """What a verified PAK resolves to; cached by the auth layer."""

    role: Role
    id: UUID | None
    key_id: str | None


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated identity of one request plus what the audit trail records about it."""

    identity: Identity
    ip_address: str | None = None
    user_agent: str | None = None
    # The verified key's hash, for use cases that must re-check it under a row lock.
    pak_hash: str | None = None

    @property
    def role(self) -> Role:
        return self.identity.role

    @property
    def id(self) -> UUID | None:
        return self.identity.id

    @property
    def is_admin(self) -> bool:
        return self.identity.role is Role.ADMIN

    def is_agent(self, agent_id: UUID) -> bool:
        return self.identity.role is Role.AGENT and self.identity.id == agent_id

    def is_generator(self, generator_id: UUID) -> bool:
        return self.identity.role is Role.GENERATOR and self.identity.id == generator_id


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise errors.AdminRequired()


def require_admin_or_agent(caller: Caller, agent_id: UUID) -> None:
    if not (caller.is_admin or caller.is_agent(agent_id)):
        raise errors.AgentPakMismatch()


def require_agent_itself(caller: Caller, agent_id: UUID) -> None:
    if not caller.is_agent(agent_id):
        raise errors.AgentPakMismatch(itself_only=True)


def require_admin_or_generator(caller: Caller, generator_id: UUID) -> None:
    if not (caller.is_admin or caller.is_generator(generator_id)):
        raise errors.GeneratorNotOwned()


def require_key_still_held(caller: Caller, current_hash: str | None) -> None:
    """A caller acting on its own credential must still hold it once that row is locked: a
    concurrent rotation may have revoked the key after the request was authenticated."""
    if caller.pak_hash is None or caller.pak_hash != current_hash:
        raise errors.PakRequired()


def require_same_id(
    body_id: UUID | msgspec.UnsetType | None, path_id: UUID, mismatch: type[errors.IdMismatch]
) -> None:
    """D8: an id sent in the body (unset or null: none was sent) must equal the id in the path."""
    if body_id is not None and body_id is not msgspec.UNSET and body_id != path_id:
        raise mismatch()
