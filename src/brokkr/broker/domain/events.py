"""Events that leave the broker (webhooks, D18): what happened, as a type name and its data.
Pure data, no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from brokkr.common import wire

# Every event type, in the reference's order (api-ops §3.2) followed by ours; what
# ``GET /webhooks/event-types`` answers and what subscription patterns are checked against.
CATALOGUE = (
    "agent.registered",
    "agent.deregistered",
    "stack.created",
    "stack.deleted",
    "deployment.created",
    "deployment.applied",
    "deployment.failed",
    "deployment.deleted",
    "workorder.created",
    "workorder.claimed",
    "workorder.completed",
    "workorder.failed",
    "template.created",
    "template.updated",
    "template.deleted",
)
# What ``prefix.*`` patterns may name: the part before the dot of some catalogue type.
PREFIXES = tuple(dict.fromkeys(name.split(".", 1)[0] for name in CATALOGUE))
# What ``POST /webhooks/{id}/test`` sends; never emitted, so not subscribable.
TEST = "webhook.test"


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """``data`` holds JSON-able values; ids and times may be given as UUID and datetime (they
    are written as the wire formats: lowercase UUID, RFC 3339 UTC)."""

    event_type: str
    data: dict[str, Any]


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The body POSTed for every delivery of one event (the wire ``WebhookEnvelope``)."""

    id: UUID
    event_type: str
    timestamp: datetime
    data: dict[str, Any]


def envelope(event: Event, *, event_id: UUID, now: datetime) -> bytes:
    """The envelope encoded once, compact: every delivery sends (and signs) these bytes."""
    return msgspec.json.encode(
        Envelope(id=event_id, event_type=event.event_type, timestamp=now, data=event.data)
    )


# The events of the catalogue, built from what changed: the data fields of api-ops §3.2, plus
# ``stack_id`` on every deployment event (so stack filters apply to them).


def agent_registered(agent: wire.Agent) -> Event:
    data = {
        "agent_id": agent.id,
        "name": agent.name,
        "cluster_name": agent.cluster_name,
        "status": agent.status,
        "created_at": agent.created_at,
    }
    return Event(event_type="agent.registered", data=data)


def agent_deregistered(agent_id: UUID, *, deleted_at: datetime) -> Event:
    return Event(
        event_type="agent.deregistered", data={"agent_id": agent_id, "deleted_at": deleted_at}
    )


def stack_created(stack: wire.Stack) -> Event:
    data = {
        "stack_id": stack.id,
        "name": stack.name,
        "description": stack.description,
        "created_at": stack.created_at,
    }
    return Event(event_type="stack.created", data=data)


def stack_deleted(stack_id: UUID, *, deleted_at: datetime) -> Event:
    return Event(event_type="stack.deleted", data={"stack_id": stack_id, "deleted_at": deleted_at})


def deployment_created(deployment_object: wire.DeploymentObject) -> Event:
    data = {
        "deployment_object_id": deployment_object.id,
        "stack_id": deployment_object.stack_id,
        "sequence_id": deployment_object.sequence_id,
        "created_at": deployment_object.created_at,
    }
    return Event(event_type="deployment.created", data=data)


def deployment_reported(event: wire.AgentEvent, *, stack_id: UUID) -> Event:
    """An agent's report: ``deployment.applied`` for SUCCESS, ``deployment.failed`` otherwise."""
    data = {
        "agent_event_id": event.id,
        "agent_id": event.agent_id,
        "deployment_object_id": event.deployment_object_id,
        "stack_id": stack_id,
        "event_type": event.event_type,
        "status": event.status,
        "message": event.message,
        "created_at": event.created_at,
    }
    applied = event.status.upper() == "SUCCESS"
    return Event(event_type="deployment.applied" if applied else "deployment.failed", data=data)


def deployment_deleted(
    marker_id: UUID, *, stack_id: UUID, agent_id: UUID | None, deleted_at: datetime
) -> Event:
    """A stack's deletion (``agent_id`` null: its deletion marker was issued), or one agent's
    acknowledgement of a deletion marker (the stack's objects are gone from its cluster)."""
    data = {
        "deployment_object_id": marker_id,
        "stack_id": stack_id,
        "agent_id": agent_id,
        "deleted_at": deleted_at,
    }
    return Event(event_type="deployment.deleted", data=data)


def template_changed(template: wire.StackTemplate, change: str) -> Event:
    """``change``: created, updated (a new version) or deleted."""
    data = {
        "template_id": template.id,
        "name": template.name,
        "version": template.version,
        "generator_id": template.generator_id,
        "updated_at": template.deleted_at or template.updated_at,
    }
    return Event(event_type=f"template.{change}", data=data)
